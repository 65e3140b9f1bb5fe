import numpy as np
import pytest

from zeroseg3d.datasets.vocabulary import IGNORE_INDEX, Vocabulary
from zeroseg3d.errors import ConfigError, DataError

# The SemanticKITTI learning map, written out independently of the vocabulary file.
KITTI_LEARNING_MAP = {
    0: -1, 1: -1, 10: 0, 11: 1, 13: 4, 15: 2, 16: 4, 18: 3, 20: 4, 30: 5, 31: 6, 32: 7,
    40: 8, 44: 9, 48: 10, 49: 11, 50: 12, 51: 13, 52: -1, 60: 8, 70: 14, 71: 15, 72: 16,
    80: 17, 81: 18, 99: -1, 252: 0, 253: 6, 254: 5, 255: 7, 256: 4, 257: 4, 258: 3, 259: 4,
}
KITTI_INVERSE = [10, 11, 15, 18, 20, 30, 31, 32, 40, 44, 48, 49, 50, 51, 70, 71, 72, 80, 81]


def test_semantickitti_learning_and_inverse_maps():
    vocab = Vocabulary.load("semantickitti")
    assert vocab.num_classes == 19
    assert vocab.learning_map == KITTI_LEARNING_MAP
    raw = np.array(sorted(KITTI_LEARNING_MAP))
    np.testing.assert_array_equal(vocab.map_raw(raw), [KITTI_LEARNING_MAP[r] for r in raw])
    np.testing.assert_array_equal(vocab.to_raw(np.arange(19)), KITTI_INVERSE)
    assert vocab.to_raw(np.array([IGNORE_INDEX]))[0] == 0
    # moving classes map onto their static class and back to the static raw id
    assert vocab.to_raw(vocab.map_raw(np.array([252, 258])))[0] == 10


def test_default_and_annotation_free_splits():
    vocab = Vocabulary.load("semantickitti")
    split = vocab.split("default")
    assert [vocab.names[i] for i in split.unseen] == ["motorcycle", "truck", "bicyclist", "traffic-sign"]
    assert len(split.seen) == 15 and not set(split.seen) & set(split.unseen)
    free = vocab.split("annotation_free")
    assert free.seen == () and len(free.unseen) == 19
    nus = Vocabulary.load("nuscenes")
    assert nus.num_classes == 16
    assert sorted(nus.names[i] for i in nus.split().unseen) == [
        "bicycle", "motorcycle", "traffic_cone", "truck"]


def test_nuscenes_32_to_16():
    vocab = Vocabulary.load("nuscenes")
    mapped = vocab.map_raw(np.arange(32))
    assert (mapped >= 0).sum() == 20  # 20 of the 32 categories are evaluated
    assert vocab.names[mapped[2]] == vocab.names[mapped[6]] == "pedestrian"
    assert vocab.names[mapped[15]] == vocab.names[mapped[16]] == "bus"
    assert mapped[31] == IGNORE_INDEX  # ego vehicle


def test_every_class_has_text_names():
    for name in ("semantickitti", "nuscenes"):
        vocab = Vocabulary.load(name)
        for i in range(vocab.num_classes):
            assert len(vocab.synonyms(i)) >= 2


def test_names_are_matched_loosely_and_unknown_names_refused():
    vocab = Vocabulary.load("semantickitti")
    assert vocab.index("Traffic Sign") == vocab.index("traffic_sign") == 18
    with pytest.raises(ConfigError, match="unknown class name 'lamp post'.*known: car"):
        vocab.split(unseen=["car", "lamp post"])
    with pytest.raises(ConfigError, match="unknown split 'nope'"):
        vocab.split("nope")


def test_unknown_raw_ids_name_the_file():
    vocab = Vocabulary.load("semantickitti")
    with pytest.raises(DataError, match=r"scan\.label: 2 labels have raw ids unknown.*\[7, 300\]"):
        vocab.map_raw(np.array([10, 7, 300]), "scan.label")


def test_open_vocabulary_from_free_text():
    vocab = Vocabulary.from_names(["car", " fire hydrant ", "person"])
    assert vocab.names == ["car", "fire hydrant", "person"]
    assert not vocab.has_raw_ids
    with pytest.raises(ConfigError):
        Vocabulary.from_names(["car", "Car"])


def test_unknown_vocabulary_lists_packaged_ones():
    with pytest.raises(ConfigError, match="packaged: nuscenes, semantickitti"):
        Vocabulary.load("kitti360")


def test_a_packaged_name_is_found_beside_a_dataset_folder_of_that_name(tmp_path, monkeypatch):
    """nuscenes/ and semantickitti/ in the working directory are datasets, not vocabularies."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nuscenes").mkdir()
    (tmp_path / "semantickitti" / "sequences").mkdir(parents=True)
    assert Vocabulary.load("nuscenes").num_classes == 16
    assert Vocabulary.load("semantickitti").source == "zeroseg3d/vocabularies/semantickitti.yaml"
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="mine: vocabulary file not found"):
        Vocabulary.load("mine")
    (tmp_path / "names.yaml").write_text("name: mine\nclasses: [{name: road}, {name: car}]\n")
    assert Vocabulary.load("names.yaml").names == ["road", "car"]


def test_dataset_formats_take_synonyms_and_refuse_other_names_before_inference():
    from zeroseg3d.engine.export import dataset_classes, dataset_raw_ids
    from zeroseg3d.errors import ConfigError

    nuscenes = Vocabulary.load("nuscenes")
    assert dataset_classes(["person", "Car"], "nuscenes").tolist() == [nuscenes.index("pedestrian"),
                                                                      nuscenes.index("car")]
    # prediction 0 = person -> a pedestrian raw id of nuScenes lidarseg
    assert dataset_raw_ids(["person", "car"], "nuscenes")[np.array([0, 1])][0] in (2, 3, 4, 6)
    with pytest.raises(ConfigError, match=r"\['fire hydrant'\] are not nuscenes classes"):
        dataset_classes(["person", "fire hydrant"], "nuscenes")
    assert dataset_classes(["fire hydrant"], "ply") is None
