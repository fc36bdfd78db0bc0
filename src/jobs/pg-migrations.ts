import type { Pool } from 'pg';

/**
 * The PostgreSQL schema, in steps applied in order; chunkscribe_schema records how many have run. Append only.
 * The same tables and meanings as the SQLite schema (src/jobs/migrations.ts, all its steps folded into the first
 * here), so both stores read and write rows through src/jobs/store-rows.ts:
 * - JSON columns are text, as in SQLite (queries that look inside cast them to jsonb);
 * - timestamps are ISO-8601 text with the "C" collation, so they and the ids order byte by byte as in SQLite
 *   (the list cursor compares them);
 * - `version` is raised by every write to the job or its chunks (triggers, so no write can forget it): the poll
 *   cache of every process compares it, which is how a write by another host is seen.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id text COLLATE "C" PRIMARY KEY,
     owner text,
     status text NOT NULL,
     stage text,
     created_at text COLLATE "C" NOT NULL,
     updated_at text COLLATE "C" NOT NULL,
     completed_at text COLLATE "C",
     audio_json text NOT NULL,
     request_json text NOT NULL,
     estimate_json text NOT NULL,
     chunks_total integer NOT NULL DEFAULT 0,
     slicing_done integer NOT NULL DEFAULT 0,
     percent double precision NOT NULL DEFAULT 0,
     transcribing_started_at text,
     error_code text,
     error_message text,
     idempotency_key text,
     transcript_json text,
     key_name text,
     webhook_json text,
     chunk_plan_json text,
     request_fingerprint text,
     version bigint NOT NULL DEFAULT 0
   );
   CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
   CREATE INDEX jobs_status ON jobs (status);
   CREATE UNIQUE INDEX jobs_idempotency ON jobs (coalesce(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL;
   CREATE TABLE chunks (
     job_id text COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
     idx integer NOT NULL,
     start_s double precision NOT NULL,
     duration_s double precision NOT NULL,
     status text NOT NULL,
     attempts integer NOT NULL DEFAULT 0,
     next_try_at text,
     error_code text,
     error_message text,
     result_json text,
     PRIMARY KEY (job_id, idx)
   );
   CREATE FUNCTION chunkscribe_job_written() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     NEW.version := OLD.version + 1;
     RETURN NEW;
   END $$;
   CREATE TRIGGER jobs_version BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION chunkscribe_job_written();
   -- A chunk's row is locked before its job's (here, and in the store's deletes): one order, so no deadlock.
   CREATE FUNCTION chunkscribe_chunk_written() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     UPDATE jobs SET version = version + 1 WHERE id = NEW.job_id;
     RETURN NULL;
   END $$;
   CREATE TRIGGER chunks_version AFTER INSERT OR UPDATE ON chunks FOR EACH ROW EXECUTE FUNCTION chunkscribe_chunk_written();`,
  // Which process holds the pending webhook delivery for its current attempt, and until when (as SQLite's step 6).
  `ALTER TABLE jobs ADD COLUMN webhook_holder text, ADD COLUMN webhook_lease_until text COLLATE "C";`,
  // The fencing token of the job's runs (as SQLite's step 7). From here on every write to a job's chunks locks the
  // job's row first (src/jobs/pg-store.ts JOB_LOCKED): the trigger above then finds it locked already.
  `ALTER TABLE jobs ADD COLUMN run_epoch bigint NOT NULL DEFAULT 0;`,
];

/** Any 64-bit number the deployment's other users of the database do not take: the migration's advisory lock. */
const MIGRATION_LOCK = 0x63_6b_73_63_72_69_62_65n; // "ckscribe"

/**
 * Brings the schema up to date. Every process runs this at start; the advisory lock (held to the end of the
 * transaction) lets one of them migrate while the others wait and then find nothing left to do. DDL is
 * transactional in PostgreSQL: a step that fails leaves no half of itself behind.
 */
export async function migratePostgres(pool: Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query('CREATE TABLE IF NOT EXISTS chunkscribe_schema (version integer NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM chunkscribe_schema');
    let version = rows[0]?.version ?? 0;
    if (rows.length === 0) await client.query('INSERT INTO chunkscribe_schema (version) VALUES (0)');
    if (version > MIGRATIONS.length) {
      throw new Error(
        `the database schema is at version ${version}, newer than this chunkscribe knows (${MIGRATIONS.length}): run the newer release`,
      );
    }
    for (; version < MIGRATIONS.length; version += 1) await client.query(MIGRATIONS[version] as string);
    await client.query('UPDATE chunkscribe_schema SET version = $1', [version]);
    await client.query('COMMIT');
    return version;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
