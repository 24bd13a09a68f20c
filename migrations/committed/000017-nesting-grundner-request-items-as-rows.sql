--! Previous: sha1:96aed4106ddbe5597936784f07fa5b0a49397f25
--! Hash: sha1:538f92c02dfd626b80454efc42d7f2c94406f7b8
--! Message: Nesting: grundner request lines as rows (grundner_request_items)

-- Nesting (issue 18): the jobs a Grundner request is about, one row each,
-- instead of unpacking grundner_requests.items wherever they are needed.
-- items stays: it is the GraphQL GrundnerRequest.items field (the console and
-- integrations read it) and the record of what was asked; a trigger
-- (sql/nesting_2_grundner.sql) unpacks it into these rows once, on insert.
create table nesting.grundner_request_items (
  request_id bigint not null references nesting.grundner_requests (id) on delete cascade,
  job_key text not null,
  job_no text not null,
  -- The board type expected back; null only for a release of a job whose
  -- material resolved to no type.
  type integer,
  -- The Grundner machine the line names (requests older than the machine
  -- column in items have none).
  machine integer,
  primary key (request_id, job_key)
);
create index grundner_request_items_job_key_idx on nesting.grundner_request_items (job_key);
create index grundner_request_items_type_idx on nesting.grundner_request_items (type);
create index grundner_request_items_job_no_idx on nesting.grundner_request_items (job_no);

insert into nesting.grundner_request_items (request_id, job_key, job_no, type, machine)
select r.id, i ->> 'key', i ->> 'job_no', (i ->> 'type')::int, (i ->> 'machine')::int
  from nesting.grundner_requests r, jsonb_array_elements(r.items) i
on conflict do nothing;
