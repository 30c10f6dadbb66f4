-- Meta's pair rate limit (131056): a burst of 45 messages to one customer from one number,
-- then one every 6 s. Each pair's theoretical arrival time (µs, GCRA), shared by every instance.
CREATE TABLE pair_pacing (
    phone_number_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    tat_at BIGINT NOT NULL,
    PRIMARY KEY (phone_number_id, recipient)
);
