"""The synthetic driving world: procedural streets, a simulated LiDAR and camera, written in
SemanticKITTI's layout, and the small CLIP-architecture teacher trained on its images."""
