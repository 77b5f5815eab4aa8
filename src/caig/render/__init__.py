"""Background generation behind one interface: the procedural renderer and diffusers inpainting."""
