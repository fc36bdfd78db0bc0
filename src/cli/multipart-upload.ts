import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export interface MultipartUpload {
  url: URL;
  headers: Record<string, string>;
  /** Path of the file sent as the `file` part; read as a stream, never whole. */
  file: string;
  filename: string;
  /** Plain text fields, sent before the file. */
  fields: Record<string, string>;
  /** Called as file bytes are handed to the socket (backpressure bounds how far that runs ahead of the wire). */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const READ_CHUNK = 256 * 1024;

/** Quoted-string escaping that browsers use for form-data names (WHATWG HTML, "multipart/form-data encoding"). */
function quote(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

export function multipartParts(
  boundary: string,
  fields: Record<string, string>,
  filename: string,
): { head: Buffer; tail: Buffer } {
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
  }
  head +=
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quote(filename)}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  return { head: Buffer.from(head, 'utf8'), tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8') };
}

/**
 * POSTs multipart/form-data with an exact Content-Length, streaming the file from disk. node:http rather than
 * fetch because the server may answer before it has read the whole body (a size cap, a refused key): fetch
 * reports that as a broken pipe, here the answer wins and the rest of the upload is dropped.
 */
export async function postMultipart(upload: MultipartUpload): Promise<RawResponse> {
  const { size } = await stat(upload.file);
  const boundary = `----chunkscribe${randomBytes(12).toString('hex')}`;
  const { head, tail } = multipartParts(boundary, upload.fields, upload.filename);
  const total = head.length + size + tail.length;
  const client = upload.url.protocol === 'https:' ? https : http;
  const stopWriting = new AbortController();

  const req = client.request(upload.url, {
    method: 'POST',
    headers: {
      ...upload.headers,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(total),
    },
    signal: upload.signal,
  });

  const write = async (buf: Buffer): Promise<void> => {
    if (!req.write(buf)) await once(req, 'drain', { signal: stopWriting.signal });
  };

  const writeBody = async (): Promise<void> => {
    let sent = 0;
    upload.onProgress?.(0, size);
    await write(head);
    const source = createReadStream(upload.file, { highWaterMark: READ_CHUNK });
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (stopWriting.signal.aborted) return;
        await write(chunk);
        sent += chunk.length;
        upload.onProgress?.(sent, size);
      }
    } finally {
      source.destroy();
    }
    await write(tail);
    req.end();
  };

  return new Promise<RawResponse>((resolve, reject) => {
    let responded = false;
    req.on('response', (res) => {
      responded = true;
      stopWriting.abort();
      res.setEncoding('utf8');
      let body = '';
      res.on('data', (text: string) => {
        body += text;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        // An early answer leaves our half of the body unsent: this socket cannot be reused.
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      stopWriting.abort();
      if (!responded) reject(err);
    });
    req.on('close', () => stopWriting.abort());
    writeBody().catch((err: unknown) => {
      if (!responded && !stopWriting.signal.aborted) req.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
}
