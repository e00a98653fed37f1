"""Coverage of a sector by brigades' tracks: a walk over the whole sector covers it, one
street of a large sector does not, and a point far off is outside the area."""

from geofence.coverage import contains, coverage

# A square of about 200 x 200 m in Almaty (a degree of longitude is about 81.3 km there).
LON, LAT = 76.945, 43.238
DLON, DLAT = 200 / 81_300, 200 / 111_050
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[LON, LAT], [LON + DLON, LAT], [LON + DLON, LAT + DLAT], [LON, LAT + DLAT], [LON, LAT]]
    ],
}


def _row(metres_north: float) -> list[tuple[float, float]]:
    lat = LAT + metres_north / 111_050
    return [(LON - 0.0001, lat), (LON + DLON + 0.0001, lat)]


def test_walking_lanes_20_m_apart_with_a_20_m_swath_covers_the_whole_sector() -> None:
    lanes = [_row(10 + 20 * i) for i in range(10)]
    assert coverage(SQUARE, lanes, width_m=20) > 0.97


def test_one_street_across_a_large_sector_is_a_small_share_of_it() -> None:
    share = coverage(SQUARE, [_row(100)], width_m=20)
    assert 0.08 < share < 0.12


def test_no_track_covers_nothing_and_a_single_fix_covers_a_disc() -> None:
    assert coverage(SQUARE, [], width_m=20) == 0
    centre = (LON + DLON / 2, LAT + DLAT / 2)
    disc = 3.14159 * 10**2 / 200**2
    assert abs(coverage(SQUARE, [[centre]], width_m=20) - disc) < 0.002


def test_a_street_drawn_as_a_line_is_covered_by_walking_it() -> None:
    street = {"type": "LineString", "coordinates": [[LON, LAT], [LON + DLON, LAT]]}
    assert coverage(street, [[(LON, LAT), (LON + DLON, LAT)]], width_m=20) > 0.9


def test_a_point_is_inside_the_area_or_its_margin_and_not_a_kilometre_off() -> None:
    assert contains(SQUARE, LON + DLON / 2, LAT + DLAT / 2, margin_m=50)
    assert contains(SQUARE, LON - 40 / 81_300, LAT + DLAT / 2, margin_m=50)
    assert not contains(SQUARE, LON + 0.02, LAT, margin_m=50)
