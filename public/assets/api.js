/* global fetch, sessionStorage, XMLHttpRequest, FormData */
// The page's only door to the service: every call carries the key and turns a failure into words.

const KEY_STORAGE = 'chunkscribe.apiKey';

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export function getApiKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? '';
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function authHeaders() {
  const key = getApiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The contract's { error: { code, message } }, or a sentence about the status when something else answered. */
function errorFrom(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error.message === 'string')
      return new ApiError(body.error.code, body.error.message, status);
  } catch {
    // not JSON
  }
  return new ApiError(`HTTP_${status}`, `The service answered with status ${status}.`, status);
}

const NETWORK_MESSAGE = 'The service cannot be reached. Check that it is running and try again.';

export async function request(path, { method = 'GET', as = 'json' } = {}) {
  let res;
  try {
    res = await fetch(path, { method, headers: authHeaders(), cache: 'no-store' });
  } catch {
    throw new ApiError('NETWORK', NETWORK_MESSAGE, 0);
  }
  if (!res.ok) throw errorFrom(res.status, await res.text());
  if (res.status === 204) return null;
  return as === 'blob' ? res.blob() : as === 'text' ? res.text() : res.json();
}

/** The job's live event stream (fetch, so the key goes along); resolves with the response body, or an ApiError. */
export async function openEvents(id, lastEventId, signal) {
  const headers = { ...authHeaders(), Accept: 'text/event-stream' };
  if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
  let res;
  try {
    res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, { headers, cache: 'no-store', signal });
  } catch {
    throw new ApiError('NETWORK', NETWORK_MESSAGE, 0);
  }
  if (!res.ok || !res.body) throw errorFrom(res.status, await res.text());
  return res.body;
}

export const api = {
  getJob: (id) => request(`/v1/jobs/${encodeURIComponent(id)}`),
  listJobs: (limit = 20) => request(`/v1/jobs?limit=${limit}`),
  deleteJob: (id) => request(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  transcript: (id, format, as = 'json') =>
    request(`/v1/jobs/${encodeURIComponent(id)}/transcript?format=${format}`, { as }),
};

/**
 * POST /v1/jobs with XMLHttpRequest, the one browser API that reports upload progress. Resolves with the job,
 * rejects with an ApiError; `abort()` on the returned handle stops the upload.
 */
export function uploadJob(file, fields, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', '/v1/jobs');
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 202 || xhr.status === 200) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError('HTTP_' + xhr.status, 'The service sent an answer this page cannot read.', xhr.status));
        }
      } else {
        reject(errorFrom(xhr.status, xhr.responseText));
      }
    });
    // A server that refuses early (a size cap) may close the connection mid-upload; the browser reports only "error".
    xhr.addEventListener('error', () =>
      reject(
        new ApiError(
          'NETWORK',
          'The upload was interrupted: the service closed the connection or cannot be reached. A file larger than the service allows ends this way too.',
          0,
        ),
      ),
    );
    xhr.addEventListener('abort', () => reject(new ApiError('ABORTED', 'Upload stopped.', 0)));
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
