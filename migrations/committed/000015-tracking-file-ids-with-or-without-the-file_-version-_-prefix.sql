--! Previous: sha1:bd8460eca1cb7b3cffa50b80e26fba91e9c27725
--! Hash: sha1:aa6ea7ab33014f10fe4572797d03f790c35f0a09
--! Message: Tracking: file ids with or without the FILE_<version>_ prefix (default pattern), re-parse mapped ones

-- Tracking (issue 14): file ids as the origin system writes them, with or
-- without the FILE_<version>_ prefix (Labex_5510_7110_...). The default
-- pattern accepts both; a plant that changed the setting keeps its own.
update ops.settings
   set value = to_jsonb('^(?:FILE_(?<version>[^_]+)_)?Labex_(?<job_id>[^_]+_[^_]+)(?:_.*)?$'::text),
       description = 'Regex for file ids, with named groups (?<version>...) and (?<job_id>...); the default accepts FILE_<version>_Labex_<job>_... and Labex_<job>_.... After changing it run select tracking.reparse_file_ids().'
 where key = 'tracking.file_id_pattern'
   and value = to_jsonb('^FILE_(?<version>[^_]+)_Labex_(?<job_id>[^_]+_[^_]+)(?:_.*)?$'::text);

-- Mapped file ids without the prefix were not parsed: parse them now (the
-- mapping's update trigger does it, with the pattern above).
update tracking.imposition_file_mapping
   set file_id = file_id
 where job_id is null and file_id ~ '^Labex_[^_]+_[^_]+';
