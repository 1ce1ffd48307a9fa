"""Light sources: lamps and LEDs driven by a control voltage."""
