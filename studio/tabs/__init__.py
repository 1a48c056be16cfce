"""The studio's tabs, one module each: its layout, how its run starts and what its result shows."""
