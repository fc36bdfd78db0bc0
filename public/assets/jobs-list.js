/* global document, window, CSS */
import { api } from './api.js';
import { localTime, TERMINAL } from './format.js';
import { $, button, showError } from './ui.js';

/** The recent jobs table: open one, or cancel/delete it (DELETE does both). */
export function createJobsList({ onOpen, onDeleted }) {
  function row(job) {
    const tr = document.createElement('tr');
    tr.dataset.jobId = job.id;
    const status = job.status === 'processing' ? `processing ${job.progress.percent}%` : job.status;
    for (const value of [job.audio.filename, status, localTime(job.created_at)]) {
      const td = document.createElement('td');
      td.textContent = value;
      tr.append(td);
    }
    const actions = document.createElement('td');
    actions.className = 'actions';
    const verb = TERMINAL.has(job.status) ? 'Delete' : 'Cancel';
    actions.append(
      button('Open', `Open the job for ${job.audio.filename}`, () => onOpen(job)),
      ' ',
      button(verb, `${verb} the job for ${job.audio.filename}`, () => void remove(job)),
    );
    tr.append(actions);
    return tr;
  }

  async function refresh(clearMessage = true) {
    try {
      const page = await api.listJobs(20);
      $('jobs-body').replaceChildren(...page.items.map(row));
      if (clearMessage) $('jobs-message').textContent = page.items.length === 0 ? 'No jobs yet.' : '';
    } catch (err) {
      $('jobs-body').replaceChildren();
      $('jobs-message').textContent = err.message;
    }
  }

  async function remove(job) {
    const running = !TERMINAL.has(job.status);
    const question = running
      ? `Cancel the job for ${job.audio.filename}? Its audio and partial transcript are deleted.`
      : `Delete the job for ${job.audio.filename}? Its audio and transcript are deleted.`;
    if (!window.confirm(question)) return;
    try {
      await api.deleteJob(job.id);
      onDeleted(job);
      $('jobs-message').textContent = `${running ? 'Cancelled' : 'Deleted'} the job for ${job.audio.filename}.`;
    } catch (err) {
      showError(err);
    }
    await refresh(false);
  }

  $('jobs-refresh').addEventListener('click', () => void refresh());

  return {
    refresh,
    remove,
    /** Keeps the followed job's row in step with the job view without reloading the list. */
    update(job) {
      const existing = document.querySelector(`#jobs-body tr[data-job-id="${CSS.escape(job.id)}"]`);
      if (existing) existing.replaceWith(row(job));
    },
  };
}
