"""The student: a sparse 3D UNet (backbone) and a head that maps points into CLIP space."""
