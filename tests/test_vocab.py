"""The registry's vocabulary as data (stations/vocabulary.toml): the words clerks write, the stored codes, the nearest
word of an unknown one, host types read from names, star ratings and phone numbers as written."""

from __future__ import annotations

import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from yizhan.stations import vocab
from yizhan.stations.importer import phone_of

ROOT = Path(__file__).resolve().parents[1]


def _data() -> dict:
    return tomllib.loads((ROOT / "stations" / "vocabulary.toml").read_text(encoding="utf-8"))


def test_the_stored_codes_and_labels_are_those_of_the_database():
    """The codes are what the database holds: their set, order and Chinese labels must not move."""
    assert vocab.KINDS == {"large": "大型驿站", "small": "小型驿站", "mobile": "流动驿站"}
    assert list(vocab.HOSTS) == ["party_service_centre", "petrol_station", "bank", "shop", "union_office", "other"]
    assert vocab.HOSTS["petrol_station"] == "加油站" and vocab.HOSTS["bank"] == "银行网点"
    assert list(vocab.AMENITIES) == ["drinking_water", "charging", "microwave", "toilet", "air_conditioning",
                                     "heating", "rest_seats", "first_aid", "love_fridge", "wifi", "umbrella",
                                     "repair_kit"]
    assert vocab.AMENITIES["first_aid"] == "医药箱"
    assert vocab.STATUSES == {"active": "运营", "closed": "关闭"}


@pytest.mark.parametrize("field", vocab.FIELDS)
def test_every_word_names_one_term_only(field):
    words: Counter[str] = Counter()
    for code, term in _data()[field]["terms"].items():
        words.update({w.strip().lower() for w in (code, term["label"], term.get("short"), term.get("en"),
                                                   *term.get("synonyms", [])) if w})
    assert [w for w, n in words.items() if n > 1] == []
    for code in _data()[field]["terms"]:
        assert vocab.canonical(field, code) == code
        assert vocab.canonical(field, vocab.label(field, code)) == code
        assert vocab.canonical(field, vocab.short(field, code)) == code
        assert vocab.canonical(field, vocab.label(field, code, lang="en")) == code


@pytest.mark.parametrize(("field", "word", "code"), [
    ("kind", "大站", "large"), ("kind", "小站", "small"), ("kind", "流动站", "mobile"), ("kind", "大型", "large"),
    ("kind", "小型", "small"), ("kind", "流动", "mobile"), ("kind", "大型驿站", "large"),
    ("kind", "流动驿站", "mobile"), ("kind", "固定站", "small"), ("kind", "固定驿站", "small"),
    ("kind", " Small ", "small"), ("kind", "LARGE", "large"),
    ("amenity", "急救药箱", "first_aid"), ("amenity", "医药箱", "first_aid"), ("amenity", "厕所", "toilet"),
    ("amenity", "卫生间", "toilet"), ("amenity", "热水", "drinking_water"), ("amenity", "饮用水", "drinking_water"),
    ("amenity", "充电桩", "charging"), ("amenity", "充电宝", "charging"), ("amenity", "爱心冰箱", "love_fridge"),
    ("amenity", "冰箱", "love_fridge"), ("amenity", "空调", "air_conditioning"),
    ("amenity", "冷气", "air_conditioning"),
    ("amenity", "暖气", "heating"), ("amenity", "取暖", "heating"), ("amenity", "供暖", "heating"),
    ("amenity", "微波炉", "microwave"), ("amenity", "加热", "microwave"), ("amenity", "wifi", "wifi"),
    ("amenity", "WiFi", "wifi"), ("amenity", "Wi-Fi", "wifi"), ("amenity", "ＷｉＦｉ", "wifi"),
    ("amenity", "无线网", "wifi"), ("amenity", "雨伞", "umbrella"), ("amenity", "雨具", "umbrella"),
    ("amenity", "打气筒", "repair_kit"), ("amenity", "维修工具", "repair_kit"), ("amenity", "座椅", "rest_seats"),
    ("amenity", "休息区", "rest_seats"), ("amenity", "drinking water", "drinking_water"),
    ("amenity", "Drinking-Water", "drinking_water"),
    ("status", "正常运营", "active"), ("status", "运营", "active"), ("status", "开放", "active"),
    ("status", "启用", "active"), ("status", "在用", "active"), ("status", "暂停", "closed"),
    ("status", "停用", "closed"), ("status", "关闭", "closed"), ("status", "撤销", "closed"),
    ("host", "加油站", "petrol_station"), ("host", "银行", "bank"), ("host", "党群服务中心", "party_service_centre"),
    ("host", "fuel", "petrol_station"), ("host", "便利店", "shop"),
])
def test_words_clerks_write(field, word, code):
    assert vocab.canonical(field, word) == code


@pytest.mark.parametrize(("field", "word"), [
    ("kind", "大站点"), ("kind", "huge"), ("amenity", "饮水机"), ("amenity", "jacuzzi"), ("status", "停业整顿"),
    ("host", "中国石化五道口加油站"), ("kind", ""),
])
def test_unknown_words_are_none(field, word):
    assert vocab.canonical(field, word) is None


@pytest.mark.parametrize(("field", "word", "code"), [
    ("kind", "大站点", "large"), ("kind", "小站点", "small"), ("kind", "流动车", "mobile"), ("kind", "Larg", "large"),
    ("amenity", "饮水机", "drinking_water"), ("amenity", "急救药品", "first_aid"), ("amenity", "打气", "repair_kit"),
    ("amenity", "toliet", "toilet"), ("amenity", "wifi6", "wifi"), ("status", "停业整顿", "closed"),
    ("host", "petrol_statoin", "petrol_station"),
])
def test_closest_word(field, word, code):
    assert vocab.closest(field, word) == code


@pytest.mark.parametrize(("field", "word"), [("amenity", "jacuzzi"), ("kind", "huge"), ("amenity", "teleporter"),
                                             ("status", "castle"), ("kind", "")])
def test_no_closest_word_when_nothing_is_alike(field, word):
    assert vocab.closest(field, word) is None


def test_chinese_characters_in_common_count_in_any_order():
    assert vocab.closest("kind", "站大") == "large"  # no character in order beyond one, both in common


@pytest.mark.parametrize(("name", "code"), [
    ("中国石化五道口加油站", "petrol_station"), ("中石油学院路加油站", "petrol_station"), ("中石化", "petrol_station"),
    ("北京农商银行五道口支行", "bank"), ("海淀农商行", "bank"), ("清河信用社", "bank"),
    ("成府路社区党群服务中心", "party_service_centre"), ("东升镇党群活动站", "party_service_centre"),
    ("海淀区总工会", "union_office"), ("物美超市", "shop"), ("7-ELEVEn便利店", "shop"), ("五道口购物中心商场", "shop"),
    ("老王水果店", "shop"), ("清华大学", "other"), ("", "other"),
])
def test_host_type_read_from_a_name(name, code):
    assert vocab.host_type_of_name(name) == code


@pytest.mark.parametrize(("text", "stars"), [
    ("一星", 1), ("二星", 2), ("两星", 2), ("三星", 3), ("四星", 4), ("五星", 5), ("五星级", 5), ("三星级", 3),
    ("1星", 1), ("4 星", 4), ("3星级", 3), ("3", 3), ("3.0", 3), ("5", 5), ("★", 1), ("★★★", 3), ("★★★☆☆", 3),
    ("☆★★", 2), ("⭐⭐⭐⭐", 4), ("***", 3), ("0", None), ("", None), ("  ", None), ("☆☆☆☆☆", None),
    ("未评级", None), ("无", None), ("0星", None), ("０", None), ("５星", 5),
])
def test_stars_as_written(text, stars):
    assert vocab.stars_of(text) == stars


@pytest.mark.parametrize("text", ["6", "六星", "★★★★★★", "x", "1.5", "-1", "3星半", "9" * 30])
def test_stars_refused(text):
    with pytest.raises(ValueError, match="star rating"):
        vocab.stars_of(text)


def test_labels_in_both_languages_and_the_choices():
    assert vocab.label("kind", "large") == "大型驿站"
    assert vocab.label("kind", "large", lang="en") == vocab.label_en("kind", "large") == "large station"
    assert vocab.label_en("amenity", "first_aid") == "first-aid kit"
    assert vocab.label_en("host", "petrol_station") == "petrol station"
    assert vocab.label("kind", "castle") == vocab.label_en("kind", "castle") == "castle"
    assert vocab.choices("kind") == "大型/小型/流动"
    assert vocab.choices("kind", lang="en") == "large/small/mobile"
    assert "医药箱" in vocab.choices("amenity") and "饮水" in vocab.choices("amenity")
    assert vocab.FIELD_LABELS["kind"] == "类型" and vocab.FIELD_LABELS["phone"] == "联系电话"
    whole = vocab.vocabulary()
    assert [t["code"] for t in whole["kind"]] == list(vocab.KINDS)
    assert "急救药箱" in next(t for t in whole["amenity"] if t["code"] == "first_aid")["synonyms"]


def test_the_vocabulary_ships_with_the_package():
    """The data file is read as package data, and the build's package data lists it (a wheel holds it)."""
    assert resources.files("yizhan.stations").joinpath("vocabulary.toml").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "vocabulary.toml" in project["tool"]["setuptools"]["package-data"]["yizhan.stations"]


@pytest.mark.parametrize(("text", "stored"), [
    ("010-62345678", "010-62345678"), ("(010)62345678", "(010)62345678"), ("（010）6234 5678", "(010)6234 5678"),
    ("010 - 62345678", "010-62345678"), ("138 0013 8000", "138 0013 8000"), ("13800138000", "13800138000"),
    ("  138  0013   8000 ", "138 0013 8000"), ("400-123-4567", "400-123-4567"), ("95588", "95588"),
    ("010-62345678 转 123", "010-62345678 转 123"), ("010-62345678-123", "010-62345678-123"),
    ("０１０－６２３４５６７８", "010-62345678"),
])
def test_phone_numbers_as_written(text, stored):
    assert phone_of(text) == stored


@pytest.mark.parametrize("text", ["无", "1234", "电话", "1" * 21, "010-6234 5678 / 138 0013 8000 / 139 0013 9000"])
def test_phone_numbers_refused(text):
    with pytest.raises(ValueError, match="digits"):
        phone_of(text)


@pytest.mark.parametrize(("text", "plain"), [("20个", "20"), ("8 座", "8"), ("6把", "6"), ("12", "12"), ("个", "个"),
                                             ("二十个", "二十"), ("", "")])
def test_seat_counts_without_their_counting_word(text, plain):
    assert vocab.seats_text(text) == plain
