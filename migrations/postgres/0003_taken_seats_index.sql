-- The dates list counts each schedule's taken seats (sold, or held): a partial index holds only
-- those, so the count never scans a concert's free seats.
CREATE INDEX seats_taken_by_schedule ON seats(schedule_id) WHERE status <> 'AVAILABLE';
