-- The situation centre's figures that no system feeds (beds, laboratory capacity, medical
-- workers examined, ...), entered by analysts once a day; every change is audited.

CREATE TABLE daily_indicators (
    day         date NOT NULL,
    indicator   text NOT NULL,
    value       numeric NOT NULL CHECK (value >= 0),
    entered_by  text NOT NULL,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, indicator)
);
