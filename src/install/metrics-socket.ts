// The node mirror's metrics socket, shared with the node agent through a node directory.
// Templates: "hoist.mirrorMetricsSocketDir", "hoist.mirrorMetricsSocketGroup" and
// "hoist.metricsSocketDirScript" in deploy/helm/hoist/templates/_helpers.tpl; the init container
// in _mirror-pod.tpl.
//
// A node mirror listens on the node's 127.0.0.1 (host network), out of reach of the agent in the
// pod network, so it also serves /metrics (only) on a unix socket (`hoist mirror
// --metrics-socket`) in a hostPath directory that the agent mounts read-only and reads
// (`--mirror-metrics unix://...`) for its NodePull status. Connecting to a unix socket needs write
// permission on the socket file (unix(7), "Pathname socket ownership and permissions"), and the
// agent runs as uid 0 with every capability dropped, so without CAP_DAC_OVERRIDE plain file
// permissions decide:
//
// - hostPath store: the mirror runs as uid 0 too and owns both the directory (the kubelet makes it
//   0755 root:root) and the socket. Nothing more is needed.
// - emptyDir store: the mirror runs as 65532. It shares a dedicated group with the agent
//   (mirror.node.metricsSocketGroup, a pod supplementalGroup of both), an init container makes the
//   directory root:GROUP 2770 (setgid, so the socket is created in GROUP), and the mirror makes
//   its socket 0660 (src/mirror/metrics-socket.ts). The init container runs as uid 0 with no
//   capability at all: the owner of a file may give it any group the owner is in and set its mode
//   (chown(2), chmod(2)), and the pod's supplementalGroups put it in GROUP; no CAP_CHOWN, no
//   CAP_FOWNER. It fails, naming the directory, when the directory is not uid 0's.
//
// Switching storage modes keeps working: the non-root mirror may replace a socket a root mirror
// left, since the directory is group-writable and not sticky; a root mirror owns the directory.
import { containerSecurity, image, type InstallContext } from './meta.js';

export const METRICS_SOCKET_DIR = '/run/hoist/mirror';
export const METRICS_SOCKET_NAME = 'metrics.sock';

/**
 * The init container's program (node -e: the image has no shell). argv: the directory, the gid.
 * Running it again changes nothing. No double quotes or backslashes: the chart renders the same
 * text with `quote`.
 */
export const PREPARE_SOCKET_DIR_SCRIPT =
  "const fs = require('node:fs'); const [dir, gid] = process.argv.slice(1); " +
  'try { fs.chownSync(dir, -1, Number(gid)); fs.chmodSync(dir, 0o2770); } ' +
  "catch (err) { console.error('cannot give ' + dir + ' to group ' + gid + ' for the mirror metrics socket: ' + err.code + '; it must be a directory owned by uid 0'); process.exit(1); }";

/**
 * The node directory of the mirror's metrics socket; undefined when there is no node mirror.
 */
export function metricsSocketDir(ctx: InstallContext): string | undefined {
  const { mirror } = ctx.values;
  return mirror.enabled && mirror.mode === 'node' ? METRICS_SOCKET_DIR : undefined;
}

/** The socket's path, for `--metrics-socket` and (as unix://PATH) `--mirror-metrics`. */
export function metricsSocketPath(ctx: InstallContext): string | undefined {
  const dir = metricsSocketDir(ctx);
  return dir && `${dir}/${METRICS_SOCKET_NAME}`;
}

/**
 * The group the node mirror and the agent share for the socket: only when the mirror runs as
 * non-root (emptyDir store); undefined when both are uid 0 (hostPath store) or there is no node
 * mirror.
 */
export function metricsSocketGroup(ctx: InstallContext): number | undefined {
  const { mirror } = ctx.values;
  if (!metricsSocketDir(ctx) || mirror.node.storage.type === 'hostPath') return undefined;
  return mirror.node.metricsSocketGroup;
}

/** The pod securityContext of the mirror and the agent: the shared group, when there is one. */
export function metricsSocketPodSecurity(ctx: InstallContext): Record<string, unknown> {
  const gid = metricsSocketGroup(ctx);
  return gid === undefined ? {} : { securityContext: { supplementalGroups: [gid] } };
}

/** The mirror pod's init container that prepares the directory, when the mirror is non-root. */
export function metricsSocketInitContainers(ctx: InstallContext, volume: string): Record<string, unknown> {
  const dir = metricsSocketDir(ctx);
  const gid = metricsSocketGroup(ctx);
  if (!dir || gid === undefined) return {};
  return {
    initContainers: [
      {
        name: 'metrics-socket-dir',
        image: image(ctx.values),
        imagePullPolicy: ctx.values.image.pullPolicy,
        command: ['node', '-e', PREPARE_SOCKET_DIR_SCRIPT, dir, String(gid)],
        // The mirror's own: the pod's request is the larger of the two, so this adds nothing.
        resources: structuredClone(ctx.values.mirror.resources),
        securityContext: containerSecurity('root'),
        volumeMounts: [{ name: volume, mountPath: dir }],
      },
    ],
  };
}
