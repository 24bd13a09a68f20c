--! Previous: sha1:26835058ec12351b5f88ff7df77307094121c8df
--! Hash: sha1:1f65b97ead2620e9bc30381e8d7cbf654471b327
--! Message: Nesting: jobs remember the Grundner machine their order went to

-- The Grundner machine number a job's order was placed with (order_saw.csv
-- field 5), so its release (get_production.csv field 2) names the same machine.
alter table nesting.jobs
  add column grundner_machine integer check (grundner_machine between 1 and 4);
