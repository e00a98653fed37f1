-- Points of interest on the city map (pharmacies, shops, hotels, hostels, residential
-- buildings with their residents), imported from CSV or GeoJSON; counted per sector or
-- zone through the spatial index.

CREATE TABLE points_of_interest (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('pharmacy', 'shop', 'hotel', 'hostel', 'residents')),
    name         text NOT NULL,
    latitude     double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    residents    integer CHECK (residents >= 0),
    source       text,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, name, latitude, longitude)
);
