import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { digestOf } from '../oci/index.js';
import { RegistryClient, UpstreamError } from '../registry-client/index.js';
import { convertAndUpload, copyBlob } from './layer-transfer.js';

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const BLOB = Buffer.alloc(256 * 1024, 7);
const DESC = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar',
  digest: digestOf(BLOB),
  size: BLOB.length,
};

/**
 * A source that starts sending the blob and then waits (as a large blob's download would), and a
 * destination that refuses uploads, as a registry does for a repository the credentials may not
 * push to. The source download must be dropped: left open, it keeps the CLI process alive.
 */
async function refusedUpload(t: { after: (fn: () => void) => void }) {
  let sourceClosed!: Promise<unknown>;
  const source = await serve((req, res) => {
    sourceClosed = once(res, 'close');
    res.writeHead(200, { 'content-length': String(BLOB.length) });
    res.write(BLOB.subarray(0, 1024)); // the rest never comes
  });
  const destination = await serve((req, res) => {
    res.writeHead(req.method === 'HEAD' ? 404 : 401, { 'content-type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}');
  });
  t.after(() => {
    source.server.closeAllConnections();
    source.server.close();
    destination.server.close();
  });
  const src = { client: new RegistryClient({ name: 'src', url: source.url }), repo: 'a/src' };
  const dst = { client: new RegistryClient({ name: 'dst', url: destination.url }), repo: 'b/dst' };
  return { src, dst, sourceClosed: () => sourceClosed };
}

describe('layer transfer to a destination that refuses the upload', { timeout: 10_000 }, () => {
  it('copyBlob fails with the refusal and drops the source download', async (t) => {
    const { src, dst, sourceClosed } = await refusedUpload(t);
    await assert.rejects(copyBlob(src, dst, DESC), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'UNAUTHORIZED');
      return true;
    });
    await sourceClosed();
  });

  it('convertAndUpload fails with the refusal and drops the source download', async (t) => {
    const { src, dst, sourceClosed } = await refusedUpload(t);
    await assert.rejects(convertAndUpload(src, dst, DESC, {}), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'UNAUTHORIZED');
      return true;
    });
    await sourceClosed();
  });
});
