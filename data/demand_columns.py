"""Which column of a delivery-order file holds what: the headers clerks and delivery platforms write, as data.

An order export (美团, 饿了么, a courier company's sheet, a clerk's own table) names the delivery position
收货经度/收货纬度, 送达经度/送达纬度, 经度/纬度, lng/lat ...; the order time 下单时间, 送达时间, 时间 ...; the number of
orders 订单量, 单量, 件数 ...; a date and a time of day in two columns (日期, 时间) make one time.
``choose_columns`` picks one column for each field from a file's headers, by the
tables below (first match wins, in the order written), or as the caller names them (``DemandColumns``, the
``--lon-col --lat-col --weight-col --time-col`` options); the choice is reported (``ColumnChoice.describe``).

Positions come in pairs: a file with both the merchant's position (商家经度/商家纬度) and the customer's
(收货经度/收货纬度) uses the customer's, where the rider goes, and says which pair it left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from yizhan.errors import InvalidInput

DELIVERY_PAIRS: tuple[tuple[str, str], ...] = (
    ("收货经度", "收货纬度"), ("送达经度", "送达纬度"), ("配送经度", "配送纬度"), ("收件经度", "收件纬度"),
    ("收件人经度", "收件人纬度"), ("收货人经度", "收货人纬度"), ("顾客经度", "顾客纬度"), ("用户经度", "用户纬度"),
    ("客户经度", "客户纬度"), ("买家经度", "买家纬度"), ("收货地址经度", "收货地址纬度"), ("目的地经度", "目的地纬度"),
    ("终点经度", "终点纬度"), ("送货经度", "送货纬度"),
    ("收貨經度", "收貨緯度"), ("送達經度", "送達緯度"), ("配送經度", "配送緯度"), ("顧客經度", "顧客緯度"),
    ("receiver_lng", "receiver_lat"), ("receiver_lon", "receiver_lat"), ("recipient_lng", "recipient_lat"),
    ("delivery_lng", "delivery_lat"), ("delivery_lon", "delivery_lat"), ("customer_lng", "customer_lat"),
    ("customer_lon", "customer_lat"), ("user_lng", "user_lat"), ("dest_lng", "dest_lat"), ("drop_lng", "drop_lat"),
)
"""Where the order is delivered: the rider's stop, what demand means here. Preferred to every other pair."""
PLAIN_PAIRS: tuple[tuple[str, str], ...] = (
    ("经度", "纬度"), ("經度", "緯度"), ("lon", "lat"), ("lng", "lat"), ("long", "lat"), ("longitude", "latitude"),
    ("坐标经度", "坐标纬度"), ("位置经度", "位置纬度"), ("gps经度", "gps纬度"), ("x", "y"), ("x坐标", "y坐标"),
)
"""A position without a role: used when no delivery pair is in the file."""
MERCHANT_PAIRS: tuple[tuple[str, str], ...] = (
    ("商家经度", "商家纬度"), ("门店经度", "门店纬度"), ("店铺经度", "店铺纬度"), ("取货经度", "取货纬度"),
    ("发货经度", "发货纬度"), ("起点经度", "起点纬度"), ("商户经度", "商户纬度"), ("商家經度", "商家緯度"),
    ("merchant_lng", "merchant_lat"), ("shop_lng", "shop_lat"), ("store_lng", "store_lat"),
    ("pickup_lng", "pickup_lat"), ("poi_lng", "poi_lat"),
)
"""Where the order is picked up: used only when the file has no other pair (and said so)."""
POSITION_PAIRS = (*DELIVERY_PAIRS, *PLAIN_PAIRS, *MERCHANT_PAIRS)
TIME_HEADERS: tuple[str, ...] = (
    "下单时间", "订单时间", "送达时间", "完成时间", "配送时间", "签收时间", "接单时间", "创建时间", "支付时间",
    "时间", "日期时间", "日期", "下單時間", "訂單時間", "送達時間", "時間", "日期時間",
    "timestamp", "time", "datetime", "date", "observed_at", "order_time", "ordered_at", "created_at",
    "delivered_at", "delivery_time",
)
"""The order's time, the first of these the file has (the order time before the delivery time)."""
WEIGHT_HEADERS: tuple[str, ...] = (
    "订单量", "单量", "订单数", "订单数量", "件数", "数量", "权重", "需求量", "訂單量", "單量", "訂單數", "件數",
    "數量", "權重", "weight", "count", "orders", "order_count", "qty", "quantity",
)
"""How many orders a row stands for (default 1 when the file has none of these)."""
CLOCK_HEADERS: tuple[str, ...] = ("时间", "時間", "time", "时刻")
"""Headers that may hold only the time of day; beside a ``DATE_HEADERS`` column the two make the order time."""
DATE_HEADERS: tuple[str, ...] = ("日期", "下单日期", "订单日期", "date", "day")
"""A date column read with a ``CLOCK_HEADERS`` column: ``日期 2026-11-25`` and ``时间 12:30``."""
FIELDS = ("lon", "lat", "weight", "time")
FIELD_NAMES = {"lon": "经度 longitude", "lat": "纬度 latitude", "weight": "订单量 weight", "time": "时间 time"}
OPTIONS = {"lon": "--lon-col", "lat": "--lat-col", "weight": "--weight-col", "time": "--time-col"}
_BRACKETED = re.compile(r"\s*[(\[][^)\]]*[)\]]\s*$")
_JOINERS = re.compile(r"[\s_\-.]+")


def header_key(name: str) -> str:
    """A header as it is looked up: full-width forms made plain (NFKC), lower case, a trailing unit or note in
    brackets dropped (``经度(GCJ-02)``, ``订单量（单）``), spaces, ``_``, ``-`` and ``.`` removed."""
    plain = unicodedata.normalize("NFKC", str(name)).strip().lower()
    return _JOINERS.sub("", _BRACKETED.sub("", plain))


_PAIR_ROLE = {**{p: "delivery" for p in DELIVERY_PAIRS}, **{p: "plain" for p in PLAIN_PAIRS},
              **{p: "merchant" for p in MERCHANT_PAIRS}}
_ROLE_NAMES = {"delivery": "收货位置 / delivery position", "plain": "位置 / position",
               "merchant": "商家位置 / merchant position"}
_KNOWN = ({header_key(n) for pair in POSITION_PAIRS for n in pair} | {header_key(n) for n in TIME_HEADERS}
          | {header_key(n) for n in WEIGHT_HEADERS})


@dataclass(frozen=True)
class DemandColumns:
    """Columns named by the caller (``--lon-col`` ...), each the header as the file writes it; None: by the
    tables of this module."""

    lon: str | None = None
    lat: str | None = None
    weight: str | None = None
    time: str | None = None

    def named(self) -> dict[str, str]:
        """The fields the caller named, by field."""
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not None}


@dataclass
class ColumnChoice:
    """The file's column used for each field (``lon``, ``lat``, ``weight``, ``time``; the last two may be None)
    and notes on what was left out (another position pair)."""

    lon: str | None
    lat: str | None
    weight: str | None = None
    time: str | None = None
    notes: list[str] = field(default_factory=list)
    date: str | None = None
    """A date column whose values go before those of ``time`` (a time of day), when the file splits them."""

    def used(self) -> dict[str, str]:
        """The columns used, by field."""
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not None}

    def describe(self) -> str:
        """The choice in one line, Chinese and English: ``经度 longitude=收货经度, 纬度 latitude=收货纬度, ...``."""
        used = self.used()
        if self.date is not None and self.time is not None:
            used["time"] = f"{self.date} + {self.time}"
        return ", ".join(f"{FIELD_NAMES[f]}={v}" for f, v in used.items())


def header_score(cells: Sequence[str], columns: DemandColumns = DemandColumns()) -> int:
    """How many of ``cells`` name a demand column (a header row names two or more): the headers of this
    module's tables, and those the caller named."""
    named = {header_key(v) for v in columns.named().values()}
    return sum(1 for c in cells if (k := header_key(str(c))) in _KNOWN or k in named)


def choose_columns(headers: Sequence[str], *, source: str, columns: DemandColumns = DemandColumns(),
                   position: bool = True, hint: str = "") -> ColumnChoice:
    """The column of ``headers`` for each field. ``position=False`` when the positions come from the file's point
    geometry (a shapefile, GeoJSON), so only weight and time are looked for, unless the caller names lon and lat.

    InvalidInput, in one line naming ``source``, when a column the caller named is not in the file (listing the
    file's columns), or no longitude/latitude column is found; ``hint`` (what the file looks like instead) is
    added to the latter.
    """
    names = [str(h) for h in headers if str(h) != "_row"]
    by_key: dict[str, str] = {}
    for n in names:
        by_key.setdefault(header_key(n), n)
    listed = ", ".join(names) or "(none)"

    def find(option: str, wanted: str) -> str:
        if wanted in names:
            return wanted
        found = by_key.get(header_key(wanted))
        if found is None:
            raise InvalidInput(f"{source}: 文件中没有列 {wanted!r}（{option}）/ no column {wanted!r} ({option}) in "
                               f"the file; 文件的列 / its columns: {listed}")
        return found

    named = {f: find(OPTIONS[f], v) for f, v in columns.named().items()}
    if ("lon" in named) != ("lat" in named):
        raise InvalidInput(f"{source}: --lon-col 与 --lat-col 须同时给出 / --lon-col and --lat-col go together: "
                           f"name both columns of the position (the file's columns: {listed})")
    choice = ColumnChoice(named.get("lon"), named.get("lat"), named.get("weight"), named.get("time"))
    if "lon" not in named and position:
        pairs = [(by_key[header_key(a)], by_key[header_key(b)], _PAIR_ROLE[(a, b)]) for a, b in POSITION_PAIRS
                 if header_key(a) in by_key and header_key(b) in by_key]
        if not pairs:
            raise InvalidInput(
                f"{source}: 找不到经度、纬度列 / no longitude and latitude columns; 文件的列 / the file's columns: "
                f"{listed}; 可用 / accepted: 收货经度/收货纬度, 送达经度/送达纬度, 经度/纬度, lon/lat, lng/lat, "
                f"longitude/latitude (…), 或用 / or name them with --lon-col and --lat-col"
                + (f"; {hint}" if hint else ""))
        choice.lon, choice.lat, role = pairs[0]
        if role == "merchant":
            choice.notes.append(f"用的是商家位置 {choice.lon}/{choice.lat}，文件中没有收货位置 / the merchant position "
                                f"{choice.lon}/{choice.lat} is used: the file has no delivery position")
        for lon, lat, other in pairs[1:]:
            if {lon, lat} & {choice.lon, choice.lat}:
                continue
            choice.notes.append(f"未用 {lon}/{lat}（{_ROLE_NAMES[other].split(' / ')[0]}）/ not used: {lon}/{lat} "
                                f"({_ROLE_NAMES[other].split(' / ')[1]}); 改用它请加 / to use it instead pass "
                                f"--lon-col {lon} --lat-col {lat}")
    taken = {choice.lon, choice.lat}
    if choice.weight is None:
        choice.weight = next((by_key[k] for n in WEIGHT_HEADERS if (k := header_key(n)) in by_key
                              and by_key[k] not in taken), None)
    if choice.time is None:
        choice.time = next((by_key[k] for n in TIME_HEADERS if (k := header_key(n)) in by_key
                            and by_key[k] not in taken), None)
        clocks = {header_key(n) for n in CLOCK_HEADERS}
        if choice.time is not None and header_key(choice.time) in clocks:
            choice.date = next((by_key[k] for n in DATE_HEADERS if (k := header_key(n)) in by_key
                                and by_key[k] not in taken), None)
    return choice
