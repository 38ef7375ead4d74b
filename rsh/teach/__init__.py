"""The demos (``rsh demo``): why TCP "sticks packets together", and how framing fixes it."""
