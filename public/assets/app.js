/* global document, window */
import { api, getApiKey, setApiKey, uploadJob } from './api.js';
import { bytes } from './format.js';
import { createJobsList } from './jobs-list.js';
import { createJobView } from './job-view.js';
import { $, clearError, showError } from './ui.js';

const jobsList = createJobsList({
  onOpen: (job) => jobView.open(job),
  onDeleted: (job) => {
    if (jobView.current()?.id === job.id) jobView.close();
  },
});
const jobView = createJobView({
  onUpdate: (job) => jobsList.update(job),
  onEnd: () => void jobsList.refresh(),
});

// ---- API key -------------------------------------------------------------------------------------------

function renderKeyStatus() {
  $('key-status').textContent = getApiKey() ? 'A key is set for this tab.' : 'No key set.';
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey($('api-key').value.trim());
  $('api-key').value = '';
  renderKeyStatus();
  void jobsList.refresh();
});
$('key-forget').addEventListener('click', () => {
  setApiKey('');
  renderKeyStatus();
  void jobsList.refresh();
});

// ---- upload --------------------------------------------------------------------------------------------

const dropZone = $('drop-zone');
dropZone.addEventListener('dragover', (e) => {
  e.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', (e) => {
  e.preventDefault();
  dropZone.classList.remove('over');
  if (e.dataTransfer && e.dataTransfer.files.length > 0) $('file').files = e.dataTransfer.files;
});

let upload = null;
let lastUploadStep = -1;

function onUploadProgress(loaded, total) {
  const percent = total > 0 ? Math.floor((loaded / total) * 100) : 0;
  $('upload-progress').value = percent;
  // The live region speaks in 10 % steps; the bar itself moves smoothly.
  const step = Math.floor(percent / 10);
  if (step !== lastUploadStep) {
    lastUploadStep = step;
    $('upload-text').textContent = `${percent}% of ${bytes(total)} sent`;
  }
}

function setUploading(on) {
  $('upload-button').disabled = on;
  $('upload-abort').hidden = !on;
}

$('upload-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('file').files[0];
  if (!file) return showError(new Error('Choose a file first.'));
  clearError();
  lastUploadStep = -1;
  $('upload-progress').value = 0;
  $('upload-progress-box').hidden = false;
  $('upload-text').textContent = `Uploading ${file.name}…`;
  setUploading(true);
  const fields = { language: $('language').value.trim().toLowerCase(), prompt: $('prompt').value.trim() };
  upload = uploadJob(file, fields, onUploadProgress);
  try {
    const job = await upload.done;
    $('upload-text').textContent = `Uploaded ${file.name}.`;
    $('upload-form').reset();
    jobView.open(job);
    void jobsList.refresh();
  } catch (err) {
    $('upload-text').textContent = `Upload of ${file.name} did not go through.`;
    showError(err);
  } finally {
    upload = null;
    setUploading(false);
  }
});
$('upload-abort').addEventListener('click', () => upload?.abort());

$('job-cancel').addEventListener('click', () => {
  const job = jobView.current();
  if (job) void jobsList.remove(job);
});

// ---- start ---------------------------------------------------------------------------------------------

renderKeyStatus();
void jobsList.refresh();
// A reload keeps following the job named in the address (#job_...).
const fromHash = window.location.hash.slice(1);
if (/^job_[A-Za-z0-9_-]+$/.test(fromHash)) {
  api.getJob(fromHash).then(
    (job) => jobView.open(job, { focus: false }),
    () => window.history.replaceState(null, '', window.location.pathname),
  );
}
document.body.dataset.ready = 'true';
