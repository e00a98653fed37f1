"""Pure geometry: distances on the WGS84 ellipsoid and the home-radius rule. No I/O."""
