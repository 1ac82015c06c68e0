"""polydiff-medical: MRI/CT reconstruction, segmentation with uncertainty and enhancement of 2-D slices."""
