import { randomBytes } from 'node:crypto';

/** 128 random bits: unguessable, so a job id is never a capability anyone can enumerate. */
export function newJobId(): string {
  return `job_${randomBytes(16).toString('base64url')}`;
}

const JOB_ID = /^job_[A-Za-z0-9_-]{22}$/;

export function isJobId(value: string): boolean {
  return JOB_ID.test(value);
}
