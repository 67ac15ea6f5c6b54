-- The tables of pgbench's TPC-B-like workload, as `pgbench -i` (PostgreSQL 15)
-- creates them: no foreign keys, fillfactor 100, primary keys added after the
-- data is loaded. sqlc reads this file to type the queries in queries.sql; the
-- benchmark itself creates and fills the tables with `pgbench -i -s N`, and a
-- test checks that the two agree.

CREATE TABLE pgbench_accounts (
    aid      integer NOT NULL,
    bid      integer,
    abalance integer,
    filler   character(84)
) WITH (fillfactor = 100);

CREATE TABLE pgbench_branches (
    bid      integer NOT NULL,
    bbalance integer,
    filler   character(88)
) WITH (fillfactor = 100);

CREATE TABLE pgbench_history (
    tid    integer,
    bid    integer,
    aid    integer,
    delta  integer,
    mtime  timestamp without time zone,
    filler character(22)
);

CREATE TABLE pgbench_tellers (
    tid      integer NOT NULL,
    bid      integer,
    tbalance integer,
    filler   character(84)
) WITH (fillfactor = 100);

ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
