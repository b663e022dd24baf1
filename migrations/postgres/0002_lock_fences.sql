-- Fencing for the `distributed` strategy: the last lock fence that wrote each locked row. A
-- writer whose fence is not newer lost its lease to another holder, and its write is refused.
ALTER TABLE seats ADD COLUMN lock_fence bigint NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN lock_fence bigint NOT NULL DEFAULT 0;
