"""Pure-numpy motion core: rotations, skeletons, FK, BVH, resampling, retargeting. No torch, no bpy."""
