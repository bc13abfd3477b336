"""Controlled vocabulary of the registry: kinds, host types, amenities, statuses.

Each term has a canonical English code (stored) and a Chinese label (shown). Importers accept either,
plus a few common synonyms a union's spreadsheet would carry.
"""

from __future__ import annotations

KINDS: dict[str, str] = {
    "large": "大型驿站",
    "small": "小型驿站",
    "mobile": "流动驿站",
}

HOSTS: dict[str, str] = {
    "party_service_centre": "党群服务中心",
    "petrol_station": "加油站",
    "bank": "银行网点",
    "shop": "商铺",
    "union_office": "工会",
    "other": "其他",
}

AMENITIES: dict[str, str] = {
    "drinking_water": "饮水",
    "charging": "充电",
    "microwave": "微波炉",
    "toilet": "卫生间",
    "air_conditioning": "空调",
    "heating": "暖气",
    "rest_seats": "休息座椅",
    "first_aid": "医药箱",
    "love_fridge": "爱心冰箱",
    "wifi": "无线网络",
    "umbrella": "雨具",
    "repair_kit": "维修工具",
}

STATUSES: dict[str, str] = {
    "active": "运营",
    "closed": "关闭",
}

_SYNONYMS: dict[str, dict[str, str]] = {
    "kind": {"大型": "large", "大": "large", "小型": "small", "小": "small", "流动": "mobile", "移动": "mobile",
             "流动驿站": "mobile", "移动驿站": "mobile"},
    "host": {"党群服务中心": "party_service_centre", "党群": "party_service_centre", "加油站": "petrol_station",
             "银行": "bank", "商店": "shop", "便利店": "shop", "超市": "shop", "工会": "union_office",
             "工会驿站": "union_office", "fuel": "petrol_station", "party_centre": "party_service_centre"},
    "amenity": {"饮用水": "drinking_water", "热水": "drinking_water", "water": "drinking_water",
                "充电桩": "charging", "厕所": "toilet", "洗手间": "toilet", "冷暖空调": "air_conditioning",
                "供暖": "heating", "座椅": "rest_seats", "休息区": "rest_seats", "急救": "first_aid",
                "急救箱": "first_aid", "冰箱": "love_fridge", "wi-fi": "wifi", "无线": "wifi"},
    "status": {"正常": "active", "运营中": "active", "开放": "active", "启用": "active", "open": "active",
               "停用": "closed", "关闭": "closed", "已关闭": "closed"},
}

_TERMS: dict[str, dict[str, str]] = {"kind": KINDS, "host": HOSTS, "amenity": AMENITIES, "status": STATUSES}


def _lookup(field: str) -> dict[str, str]:
    table = {code: code for code in _TERMS[field]}
    table.update({lbl: code for code, lbl in _TERMS[field].items()})
    table.update(_SYNONYMS[field])
    table.update({k.lower(): v for k, v in _SYNONYMS[field].items()})
    return table


_LOOKUP = {f: _lookup(f) for f in _TERMS}


def canonical(field: str, value: str) -> str | None:
    """Return the stored code for ``value`` of vocabulary ``field`` (kind/host/amenity/status), or None.

    Accepts the code itself (any case, spaces or hyphens for underscores), its Chinese label, or a synonym.
    """
    v = value.strip()
    table = _LOOKUP[field]
    return table.get(v) or table.get(v.lower().replace(" ", "_").replace("-", "_")) or table.get(v.lower())


def label(field: str, code: str) -> str:
    """Chinese label of a stored code; the code itself when unknown."""
    return _TERMS[field].get(code, code)
