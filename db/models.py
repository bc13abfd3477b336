"""ORM models. Every geometry is stored in WGS 84 (``SRID``), lon/lat axis order, with a GiST index.

Stations also carry a ``geog`` geography column computed from ``geom``: nearest-neighbour and radius
queries run on it, in metres on the spheroid, with its own GiST index (no cast in the query).
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType

from geoalchemy2 import Geography, Geometry, WKBElement
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326
"""The one stored SRID: WGS 84 longitude/latitude."""


class Base(DeclarativeBase):
    pass


FINITE_POINT = "NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90"
"""A point column ``geom`` that holds a real place: not empty, finite lon/lat in range (NaN fails BETWEEN)."""


def _geom(kind: str, *, nullable: bool = False) -> Mapped[WKBElement]:
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=False), nullable=nullable)


class Area(Base):
    """A study area (county, district) with its boundary and the metric CRS of its analysis."""

    __tablename__ = "areas"
    __table_args__ = (Index("ix_areas_boundary", "boundary", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    crs_epsg: Mapped[int] = mapped_column(Integer)
    boundary: Mapped[WKBElement | None] = _geom("MULTIPOLYGON", nullable=True)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    display_name: Mapped[str | None] = mapped_column(String(200))
    """The name people use (海淀区五道口街道); ``name`` is the code name commands take."""
    registry_lang: Mapped[str | None] = mapped_column(String(2))
    """``zh`` or ``en``: the language of the registry's last import, which exports follow unless told."""


class Station(Base):
    """A rest station of the registry; ``external_id`` is the union's own stable id within the area."""

    __tablename__ = "stations"
    __table_args__ = (
        UniqueConstraint("area_id", "external_id", name="uq_stations_area_external_id"),
        Index("ix_stations_geom", "geom", postgresql_using="gist"),
        Index("ix_stations_geog", "geog", postgresql_using="gist"),
        Index("ix_stations_amenities", "amenities", postgresql_using="gin"),
        CheckConstraint(FINITE_POINT, name="ck_stations_finite_point"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str | None] = mapped_column(String(40))
    """The host type code (``stations.vocab.HOSTS``); ``host_name`` the host as written (中国石化五道口加油站)."""
    host_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))
    township: Mapped[str | None] = mapped_column(String(100))
    amenities: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    opening_hours: Mapped[str | None] = mapped_column(String(300))
    """The OSM ``opening_hours`` rule; ``opening_hours_text`` the hours as written when not that rule (全天)."""
    opening_hours_text: Mapped[str | None] = mapped_column(String(300))
    seats: Mapped[int | None] = mapped_column(Integer)
    stars: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    geom: Mapped[WKBElement] = _geom("POINT")
    geog: Mapped[WKBElement] = mapped_column(
        Geography("POINT", srid=SRID, spatial_index=False), Computed("geom::geography", persisted=True)
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DemandPointBlock(Base):
    """A block of up to 65,536 raw delivery-demand observations (order drop-offs, GPS pings) of an area (migration
    0017): ``first_id`` the number of its first point (the others follow, numbered in the area from 1 in the order
    of the file), ``n`` its points, ``weight_sum`` their orders, ``west``, ``south``, ``east``, ``north`` their box
    in metres of the area's metric CRS, and one ``bytea`` per column of 8-byte big-endian values: ``lon``, ``lat``
    WGS 84 degrees, ``x``, ``y`` metres (x east, y north), ``weight``, ``micros`` (microseconds since 2000-01-01 UTC,
    the smallest 64-bit number for none; NULL when no point has a time). Partitioned by area
    (``demand_point_blocks_a{id}``), no index, key or foreign key: ``data.demand_points`` writes and reads an area's
    points whole."""

    __tablename__ = "demand_point_blocks"
    __table_args__ = ({"postgresql_partition_by": "LIST (area_id)"},)

    area_id: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    weight_sum: Mapped[float] = mapped_column(Float)
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
    lon: Mapped[bytes] = mapped_column(LargeBinary)
    lat: Mapped[bytes] = mapped_column(LargeBinary)
    x: Mapped[bytes] = mapped_column(LargeBinary)
    y: Mapped[bytes] = mapped_column(LargeBinary)
    weight: Mapped[bytes] = mapped_column(LargeBinary)
    micros: Mapped[bytes | None] = mapped_column(LargeBinary)
    __mapper_args__ = MappingProxyType({"primary_key": (area_id, first_id)})
    """The ORM's identity of a block (no key in the table)."""


class DemandLayer(Base):
    """One demand import of an area (migration 0012): its cells are stored once and every run of it refers to them.
    The area's current layer is its one not retired; a retired layer stays while a run refers to it."""

    __tablename__ = "demand_layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text, server_default="")
    cell_size_m: Mapped[float | None] = mapped_column(Float)
    cells: Mapped[int] = mapped_column(Integer, server_default="0")
    weight: Mapped[float] = mapped_column(Float, server_default="0")
    lattice: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """Its cells are the lattice squares their keys ``{size}m:{ix}:{iy}`` name (metres in the area's CRS)."""
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    """How its cells were made (migration 0016): ``{"h3": true, "h3_res": 9}`` for H3 hexagons, else ``{}``."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DemandCell(Base):
    """A demand grid cell (square, ``cell_size_m`` metres in the area CRS) with its summed weight, in the layer of
    the import that made it; ``x``, ``y`` its centre in metres in the area's CRS (x east, y north). The area's
    current cells are the view ``area_cells``.

    In the database the table is partitioned by list of ``layer_id`` (migration 0015): each layer's cells are a
    table of their own, ``demand_cells_l{layer_id}`` (``data.layers``), and the primary key is ``(id, layer_id)``;
    ``id`` comes from one sequence, so it still names a cell alone. The model maps the parent table."""

    __tablename__ = "demand_cells"
    __table_args__ = (
        UniqueConstraint("layer_id", "cell_key", name="uq_demand_cells_layer_key"),
        Index("ix_demand_cells_layer_x", "layer_id", "x"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(Integer, index=True)
    """The area (migration 0014: no foreign key checked per cell; the area's layers go with it, their cells with
    them). No spatial index either: cells are read by layer, a part's by its box on ``x``."""
    layer_id: Mapped[int] = mapped_column(Integer)
    """The demand layer, the partition key: a trigger on ``demand_layers`` drops a deleted layer's table of cells
    (migration 0015; before it, 0014 deleted the cells)."""
    cell_key: Mapped[str] = mapped_column(String(60))
    cell_size_m: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer)
    geom: Mapped[WKBElement] = _geom("POLYGON")
    centroid: Mapped[WKBElement] = _geom("POINT")
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)


class CoverageRun(Base):
    """One coverage analysis with its parameters and headline figures."""

    __tablename__ = "coverage_runs"
    __table_args__ = (Index("ix_coverage_runs_covered", "covered_geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(20))
    radius_m: Mapped[float] = mapped_column(Float)
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    stations: Mapped[int] = mapped_column(Integer)
    cells: Mapped[int] = mapped_column(Integer)
    demand_total: Mapped[float] = mapped_column(Float)
    demand_covered: Mapped[float] = mapped_column(Float)
    covered_share: Mapped[float] = mapped_column(Float)
    covered_area_m2: Mapped[float] = mapped_column(Float)
    gaps: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str | None] = mapped_column(String(20))
    demand_covered_straight: Mapped[float | None] = mapped_column(Float)
    covered_geom: Mapped[WKBElement | None] = _geom("MULTIPOLYGON", nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    demand_by_hour: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    """A run by hour (migration 0011): demand per hour of the week (168, Monday 00:00 first, local time)."""
    covered_by_hour: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    open_by_hour: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    layer_id: Mapped[int | None] = mapped_column(ForeignKey("demand_layers.id", ondelete="CASCADE",
                                                            name="fk_coverage_runs_layer"), index=True)
    """The demand layer the run analysed (migration 0012)."""


class DemandProfile(Base):
    """An area's demand over the 168 hours of the week (Monday 00:00 first, local time), summing to 1: demand
    without times is spread by it (migration 0011)."""

    __tablename__ = "demand_profiles"
    __table_args__ = (CheckConstraint("array_length(weights, 1) = 168", name="ck_demand_profiles_168"),)

    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    weights: Mapped[list[float]] = mapped_column(ARRAY(Float))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RunStationLoad(Base):
    """A station's load in a run with capacity: its peak hour, the demand within reach then, per seat, crowded or
    not (a copy of the station's id, name and place: it survives the station's removal)."""

    __tablename__ = "run_station_loads"

    run_id: Mapped[int] = mapped_column(ForeignKey("coverage_runs.id", ondelete="CASCADE"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    seats: Mapped[int | None] = mapped_column(Integer)
    peak_hour: Mapped[int | None] = mapped_column(SmallInteger)
    peak_demand: Mapped[float] = mapped_column(Float)
    per_seat: Mapped[float | None] = mapped_column(Float)
    crowded: Mapped[bool] = mapped_column(Boolean)
    geom: Mapped[WKBElement] = _geom("POINT")


class RunCell(Base):
    """A run's result for one cell of its demand layer (migration 0012: numbers only; the key, weight and polygon
    are the layer's cell). ``nearest_station_id`` is a station's id with no foreign key (a removed station's id
    finds no station)."""

    __tablename__ = "run_cells"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """The run's id; no foreign key (checked per row, it made storing slow): a trigger on ``coverage_runs`` deletes
    a run's cells with it."""
    cell_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    covered: Mapped[bool] = mapped_column(Boolean)
    nearest_station_id: Mapped[int | None] = mapped_column(Integer)
    distance_m: Mapped[float | None] = mapped_column(Float)
    straight_distance_m: Mapped[float | None] = mapped_column(Float)
    covered_weight: Mapped[float | None] = mapped_column(Float)
    """Demand of the cell's own points within reach (runs measured on points)."""
    covered_hours: Mapped[bytes | None] = mapped_column(LargeBinary)
    """21 bytes, bit h (little-endian bit order) set when covered at hour h of the week."""
    hours_covered: Mapped[int | None] = mapped_column(SmallInteger)
    night_gap: Mapped[bool | None] = mapped_column(Boolean)
    accessibility: Mapped[float | None] = mapped_column(Float)


class Gap(Base):
    """A gap of a run: adjacent uncovered demand cells merged into one polygon, ranked by unmet demand."""

    __tablename__ = "gaps"
    __table_args__ = (
        UniqueConstraint("run_id", "rank", name="uq_gaps_run_rank"),
        Index("ix_gaps_geom", "geom", postgresql_using="gist"),
        Index("ix_gaps_centroid", "centroid", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("coverage_runs.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    demand: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    cells: Mapped[int] = mapped_column(Integer)
    nearest_station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id", ondelete="SET NULL"))
    nearest_distance_m: Mapped[float | None] = mapped_column(Float)
    straight_distance_m: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[WKBElement] = _geom("MULTIPOLYGON")
    centroid: Mapped[WKBElement] = _geom("POINT")


class AdminUnit(Base):
    """A district/township (or a named sector of a demo area) for summaries."""

    __tablename__ = "admin_units"
    __table_args__ = (
        UniqueConstraint("area_id", "name", name="uq_admin_units_area_name"),
        Index("ix_admin_units_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(40))
    geom: Mapped[WKBElement] = _geom("MULTIPOLYGON")


class RunUnit(Base):
    """A run's figures within one administrative unit (a copy: it survives re-imported units)."""

    __tablename__ = "run_units"

    run_id: Mapped[int] = mapped_column(ForeignKey("coverage_runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    stations: Mapped[int] = mapped_column(Integer)
    demand: Mapped[float] = mapped_column(Float)
    demand_covered: Mapped[float] = mapped_column(Float)
    demand_covered_straight: Mapped[float] = mapped_column(Float)
    demand_by_hour: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    covered_by_hour: Mapped[list[float] | None] = mapped_column(ARRAY(Float))


class ApiKey(Base):
    """A staff API key; only its SHA-256 is stored (the key itself is shown once, at creation)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CandidateSite(Base):
    """A place that could host a new station (an OSM POI or a site the union has an agreement with)."""

    __tablename__ = "candidate_sites"
    __table_args__ = (
        UniqueConstraint("area_id", "external_id", name="uq_candidate_sites_area_id"),
        Index("ix_candidate_sites_geom", "geom", postgresql_using="gist"),
        CheckConstraint(FINITE_POINT, name="ck_candidate_sites_finite_point"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    host_type: Mapped[str] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(200))
    geom: Mapped[WKBElement] = _geom("POINT")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RecommendationRun(Base):
    """One site recommendation (MCLP for k sites, set covering to a target share, or an evaluated list)."""

    __tablename__ = "recommendation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    problem: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    profile: Mapped[str | None] = mapped_column(String(20))
    radius_m: Mapped[float] = mapped_column(Float)
    k: Mapped[int] = mapped_column(Integer)
    target: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(200))
    optimal: Mapped[bool] = mapped_column(Boolean)
    objective: Mapped[float] = mapped_column(Float)
    bound: Mapped[float] = mapped_column(Float)
    gap: Mapped[float] = mapped_column(Float)
    demand_total: Mapped[float] = mapped_column(Float)
    demand_covered_before: Mapped[float] = mapped_column(Float)
    demand_covered_after: Mapped[float] = mapped_column(Float)
    candidates: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RecommendedSite(Base):
    """A chosen site of a recommendation run, ranked by the demand it newly covers after those ranked above."""

    __tablename__ = "recommended_sites"
    __table_args__ = (Index("ix_recommended_sites_geom", "geom", postgresql_using="gist"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("recommendation_runs.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    host_type: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200))
    gain: Mapped[float] = mapped_column(Float)
    covered_share_after: Mapped[float] = mapped_column(Float)
    geom: Mapped[WKBElement] = _geom("POINT")


class RecommendationGap(Base):
    """What demand stays uncovered after a recommendation: merged cells ranked by unmet demand."""

    __tablename__ = "recommendation_gaps"
    __table_args__ = (Index("ix_recommendation_gaps_geom", "geom", postgresql_using="gist"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("recommendation_runs.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    demand: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    cells: Mapped[int] = mapped_column(Integer)
    geom: Mapped[WKBElement] = _geom("MULTIPOLYGON")


class MonthlyReturn(Base):
    """A union's monthly return (月报) of an area: who made it, when, the coverage run it used, and snapshots of the
    registry (``stations``: every station's fields), the per-township shares (``units``) and the top gaps, so the
    next month's return can list what changed. ``period`` is the first day of the calendar month (local time)."""

    __tablename__ = "monthly_returns"
    __table_args__ = (UniqueConstraint("area_id", "period", name="uq_monthly_returns_area_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    period: Mapped[date] = mapped_column(Date)
    union_name: Mapped[str] = mapped_column(String(200))
    preparer: Mapped[str] = mapped_column(String(100))
    reviewer: Mapped[str] = mapped_column(String(100))
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    run_id: Mapped[int | None] = mapped_column(ForeignKey("coverage_runs.id", ondelete="SET NULL"))
    figures: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    stations: Mapped[list] = mapped_column(JSONB, server_default="[]")
    units: Mapped[list] = mapped_column(JSONB, server_default="[]")
    gaps: Mapped[list] = mapped_column(JSONB, server_default="[]")


class AreaExtract(Base):
    """The OpenStreetMap extract (a path on this machine) the area's street networks were last built from; reports
    read the names of the streets near gaps from it."""

    __tablename__ = "area_extracts"

    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """Who may sign in to the console: a name (unique without regard to case), a role (admin, staff, planner) and
    an argon2 hash of the password, never the password; a disabled user keeps the row and cannot sign in."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'staff', 'planner')", name="ck_users_role"),
        CheckConstraint("password_hash LIKE '$argon2%'", name="ck_users_password_hash_argon2"),
        Index("uq_users_lower_name", text("lower(name)"), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in browser: the SHA-256 of its random token (the token itself is only in the cookie), its CSRF
    token, when it began and when it was last used (idle and absolute expiry are counted from these)."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInFailure(Base):
    """A failed sign-in: the account name tried (lower-cased), the client address, when; counted by the throttle."""

    __tablename__ = "signin_failures"
    __table_args__ = (
        Index("ix_signin_failures_account_at", "account", "at"),
        Index("ix_signin_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """Long work the console started (a coverage run, a recommendation) and where it stands: ``state`` queued,
    running, done or failed, the last progress ``message`` and a ``heartbeat`` while it works, and when finished the
    id of what it made (``result_id``) or the ``error`` (migration 0010)."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('coverage', 'recommendation')", name="ck_jobs_kind"),
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="ck_jobs_state"),
        Index("ix_jobs_kind_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    state: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, server_default="")
    result_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
