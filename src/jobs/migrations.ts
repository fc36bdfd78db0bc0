import type { DatabaseSync } from 'node:sqlite';

/** Schema versions, applied in order; PRAGMA user_version records how many have run. Append only. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     owner TEXT,
     status TEXT NOT NULL,
     stage TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     completed_at TEXT,
     audio_json TEXT NOT NULL,
     request_json TEXT NOT NULL,
     estimate_json TEXT NOT NULL,
     chunks_total INTEGER NOT NULL DEFAULT 0,
     slicing_done INTEGER NOT NULL DEFAULT 0,
     percent REAL NOT NULL DEFAULT 0,
     transcribing_started_at TEXT,
     error_code TEXT,
     error_message TEXT,
     idempotency_key TEXT,
     transcript_json TEXT
   );
   CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
   CREATE INDEX jobs_status ON jobs (status);
   CREATE UNIQUE INDEX jobs_idempotency ON jobs (ifnull(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL;
   CREATE TABLE chunks (
     job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
     idx INTEGER NOT NULL,
     start_s REAL NOT NULL,
     duration_s REAL NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_try_at TEXT,
     error_code TEXT,
     error_message TEXT,
     result_json TEXT,
     PRIMARY KEY (job_id, idx)
   );`,
  // The name of the API key that created the job (API_KEYS_FILE); the owner column keeps only the key's fingerprint.
  `ALTER TABLE jobs ADD COLUMN key_name TEXT;`,
  // Delivery state of the callback_url webhook. Jobs that ended before webhooks were delivered are not called now.
  `ALTER TABLE jobs ADD COLUMN webhook_json TEXT;
   UPDATE jobs SET webhook_json = json_object('status', 'failed', 'attempts', 0, 'last_status_code', NULL,
       'last_error', 'the job ended before this server delivered webhooks', 'next_attempt_at', NULL)
     WHERE status IN ('completed', 'failed') AND json_extract(request_json, '$.callback_url') IS NOT NULL;`,
  // How the slicer cut the job's chunks (stream copy or re-encode); null for jobs sliced before it was kept.
  `ALTER TABLE jobs ADD COLUMN chunk_plan_json TEXT;`,
  // What an Idempotency-Key was first used for (fields, file name, sha256 of the file): a reuse for another request
  // is refused. Null for jobs created before it was kept: every request replays them, as before.
  `ALTER TABLE jobs ADD COLUMN request_fingerprint TEXT;`,
  // Which process holds the pending webhook delivery for its current attempt, and until when (ISO-8601): one
  // sender at a time across processes, and a dead one's claim runs out.
  `ALTER TABLE jobs ADD COLUMN webhook_holder TEXT;
   ALTER TABLE jobs ADD COLUMN webhook_lease_until TEXT;`,
  // The fencing token of the job's runs (src/jobs/run-fence.ts): raised by each runner that takes the job up, and
  // carried by every write of that run, so a runner that lost the job (frozen past its queue lock) writes nothing.
  `ALTER TABLE jobs ADD COLUMN run_epoch INTEGER NOT NULL DEFAULT 0;`,
];

export function migrate(db: DatabaseSync): number {
  const current = () => (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  let version = current();
  while (version < MIGRATIONS.length) {
    db.exec('BEGIN IMMEDIATE');
    try {
      // Scale-out processes share the file: another one may have applied this step while we waited for the lock.
      version = current();
      if (version < MIGRATIONS.length) {
        db.exec(MIGRATIONS[version] as string);
        version += 1;
        db.exec(`PRAGMA user_version = ${version}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
  return version;
}
