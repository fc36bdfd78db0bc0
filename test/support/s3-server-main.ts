/**
 * s3rver behind the test front (s3-server.ts createS3Front) as a process of its own, for a test that runs it on
 * another host: `node s3-server-main.ts <directory> <bucket> <host> <port>`. Prints `{"listening": "<endpoint>"}`
 * once it accepts connections; runs until killed.
 */
import { createS3Front } from './s3-server.ts';

const [directory, bucket, host, port] = process.argv.slice(2);
if (!directory || !bucket || !host || !port)
  throw new Error('usage: s3-server-main.ts <directory> <bucket> <host> <port>');
const { server } = await createS3Front(directory, bucket);
server.listen(Number(port), host, () => {
  process.stdout.write(`${JSON.stringify({ listening: `http://${host}:${port}` })}\n`);
});
