"""Files: NIfTI in and out in line with the input, DICOM with its rescale applied (pydicom's
own example files, never a download), and phantoms reproducible slice by slice."""
import json

import nibabel
import numpy as np
import polydiff
import pydicom
import pytest
from polydiff_medical import data
from polydiff_medical.io import read_array, read_slice
from pydicom.data import get_testdata_file


def test_slice_i_of_a_batch_is_the_slice_of_its_own_seed():
    images, masks = data.batch(4, 100)
    image, mask = data.phantom(102)
    assert np.array_equal(images[2], image) and np.array_equal(masks[2], mask)
    assert images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) <= {0.0, 1.0}


def test_lesions_vary_and_some_slices_have_none():
    masks = data.batch(200, 7)[1]
    areas = masks.sum(axis=(1, 2))
    assert 0.05 < (areas == 0).mean() < 0.3
    assert areas[areas > 0].min() < 20 < areas.max()


def test_a_dicom_is_read_with_its_rescale_applied():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    array, source = read_array(path, "init")
    assert source["kind"] == "dicom"
    assert np.array_equal(array, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    with pytest.raises(polydiff.InvalidInputError, match="init: slices must be 64x64 .* got 128x128"):
        read_slice(path, "init")


def test_the_mr_example_dicom_is_segmented_and_written_as_nifti(tmp_path):
    path = get_testdata_file("MR_small.dcm")
    result = polydiff.generate("medical", task="segment", init=path, n=2, steps=3, seed=0)
    files = {p.name for p in result.save(tmp_path / "seg")}
    assert {"probability.nii.gz", "uncertainty.nii.gz", "segmentation.nii.gz", "segment-000.nii.gz"} <= files
    meta = json.loads((tmp_path / "seg" / "metadata.json").read_text())
    assert meta["inputs"]["init"]["path"] == path
    pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
    written = np.asarray(nibabel.load(tmp_path / "seg" / "segment-000.nii.gz").dataobj)
    # the image channel is the input itself, back in the DICOM's own units
    assert np.abs(written - pixels).max() <= 1e-3 * pixels.max()


def test_a_dicom_without_pixel_data_is_one_line(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "empty.dcm")
    with pytest.raises(polydiff.InvalidInputError, match="init: the DICOM file .* has no pixel data"):
        read_slice(tmp_path / "empty.dcm", "init")


def _volume(tmp_path, slices=5):
    image = data.batch(slices, 40)[0].transpose(1, 2, 0) * 800 + 100  # scanner-like units
    affine = np.array([[0.9, 0, 0, -30], [0, 0.9, 0, -28], [0, 0, 3.0, 12], [0, 0, 0, 1]])
    path = tmp_path / "volume.nii.gz"
    nibabel.save(nibabel.Nifti1Image(image.astype(np.float32), affine), path)
    return path, image, affine


def test_a_result_from_a_nifti_slice_lines_up_with_it(tmp_path):
    path, volume, affine = _volume(tmp_path)
    result = polydiff.generate("medical", task="segment", init=str(path), slice=3, n=1, steps=3, seed=0)
    result.save(tmp_path / "out")
    out = nibabel.load(tmp_path / "out" / "segment-000.nii.gz")
    assert out.shape == (64, 64, 1)
    expected = affine.copy()
    expected[:3, 3] += affine[:3, 2] * 3       # slice 3's position in the scanner's frame
    assert np.allclose(out.affine, expected)
    assert np.abs(np.asarray(out.dataobj)[:, :, 0] - volume[:, :, 3]).max() < 1e-2


@pytest.mark.parametrize("make, needle", [
    (lambda p, v: (p, {}), "a 3-D NIfTI with 5 slices; pass --slice K"),
    (lambda p, v: (p, {"slice": 9}), "slice: 9 is outside 0 to 4"),
])
def test_a_volume_needs_a_slice_in_range(tmp_path, make, needle):
    path, volume, _ = _volume(tmp_path)
    init, options = make(str(path), volume)
    with pytest.raises(polydiff.InvalidInputError, match=needle):
        polydiff.generate("medical", task="segment", init=init, steps=2, **options)


def test_a_4d_nifti_is_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.zeros((64, 64, 2, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(polydiff.InvalidInputError, match="init: a 4-D NIfTI"):
        polydiff.generate("medical", task="segment", init=str(tmp_path / "4d.nii"), steps=2)
