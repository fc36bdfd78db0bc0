// Waits for the service, uploads a recording, follows its progress and prints the SRT: the README walkthrough as code.
import { openAsBlob } from 'node:fs';
import path from 'node:path';

const [base, file] = process.argv.slice(2);
const headers = process.env.API_KEY ? { authorization: `Bearer ${process.env.API_KEY}` } : {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/health/ready`)).ok) break;
  } catch {
    // not listening yet
  }
  if (i > 120) throw new Error('the service did not become ready');
  await sleep(500);
}
const form = new FormData();
form.append('file', await openAsBlob(file), path.basename(file));
form.append('language', 'en');
const created = await fetch(`${base}/v1/jobs`, { method: 'POST', body: form, headers });
const job = await created.json();
if (created.status !== 202) throw new Error(`upload refused: ${created.status} ${JSON.stringify(job)}`);
console.error(`[demo] uploaded ${file} as ${job.id}; polling ${base}${job.links.self}`);
for (;;) {
  const j = await (await fetch(`${base}${job.links.self}`, { headers })).json();
  console.error(
    `[demo] ${j.status} ${j.stage ?? ''} ${j.progress.chunks_done}/${j.progress.chunks_total} chunks, ${j.progress.percent}%`,
  );
  if (j.status === 'completed') break;
  if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`job ${j.status}: ${JSON.stringify(j.error)}`);
  await sleep(1000);
}
const srt = await (await fetch(`${base}${job.links.transcript}?format=srt`, { headers })).text();
console.error(`[demo] transcript (${base}${job.links.transcript}?format=srt):\n${srt}`);
