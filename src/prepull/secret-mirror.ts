import type { Logger } from 'pino';
import type { KubeObject, ResourceRef } from '../kube/index.js';
import type { Credentials } from '../registry-client/index.js';
import { describeError, type Tally } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import type { PrePullInput } from './plan.js';
import {
  MIRRORED_SELECTOR,
  mergePullSecrets,
  mirroredSecret,
  mirroredSecretName,
  sameSecret,
  type KubeSecret,
} from './pull-secrets.js';
import type { KubeApi } from './reconciler.js';
import { prePullKey, type PrePull } from './types.js';

/**
 * The I/O half of docs/prepull.md "Credentials": reads each PrePull's pull secrets in its
 * namespace (get by name only), writes the merged copy into the controller's namespace when it
 * differs, and deletes copies no PrePull names. Re-reads at each resync (rotated credentials)
 * and on a new generation; keeps the last good copy while the API fails.
 */

export interface MirrorState {
  /** uid:generation the mirror was made for. */
  token: string;
  at: number;
  ok: boolean;
  secretName?: string;
  /** The merged credentials, for resolving tags. Never logged. */
  credentials: ReadonlyMap<string, Credentials>;
}

export interface PullSecretMirrorOptions {
  api: KubeApi;
  /** The controller's namespace. */
  namespace: string;
  log: Logger;
  metrics?: ControllerMetrics;
  resyncMs: number;
}

/** After a failed read or write, try again this soon (the reconcile backs off on its own too). */
const RETRY_MS = 5_000;

const secretRef = (namespace: string, name?: string): ResourceRef => ({
  group: '',
  version: 'v1',
  plural: 'secrets',
  namespace,
  ...(name ? { name } : {}),
});

export class PullSecretMirror {
  private readonly states = new Map<string, MirrorState>();
  private lastGc = { at: 0, names: '' };

  constructor(private readonly opts: PullSecretMirrorOptions) {}

  get(key: string): MirrorState | undefined {
    return this.states.get(key);
  }

  /** Drops the state of PrePulls that are gone. */
  forget(keys: ReadonlySet<string>): void {
    for (const key of this.states.keys()) if (!keys.has(key)) this.states.delete(key);
  }

  /** Mirrors the PrePull's pull secrets when due; returns the mirrored Secret's name, if any. */
  async mirror(input: PrePullInput, now: number, result: Tally): Promise<string | undefined> {
    const p = input.object;
    const key = prePullKey(p.metadata);
    if (!input.parsed.ok || input.parsed.spec.imagePullSecrets.length === 0) {
      this.states.delete(key);
      return undefined;
    }
    const names = input.parsed.spec.imagePullSecrets;
    const token = `${p.metadata.uid ?? ''}:${p.metadata.generation ?? 0}`;
    const state = this.states.get(key);
    const due =
      state === undefined ||
      state.token !== token ||
      now - state.at >= this.opts.resyncMs ||
      (!state.ok && now - state.at >= RETRY_MS);
    if (!due) return state.secretName;
    const namespace = p.metadata.namespace ?? '';
    try {
      const sources = await Promise.all(
        names.map(async (name) => ({
          name,
          secret: await this.opts.api.get<KubeSecret & KubeObject>(secretRef(namespace, name)),
        })),
      );
      const merged = mergePullSecrets(sources, namespace);
      for (const problem of merged.problems)
        this.opts.log.warn({ prepull: key }, `pull secret skipped: ${problem}`);
      let secretName: string | undefined;
      if (merged.dockerConfigJson !== undefined) {
        const wanted = mirroredSecret(p, this.opts.namespace, merged.dockerConfigJson);
        secretName = wanted.metadata.name;
        const stored = await this.opts.api.get<KubeSecret & KubeObject>(
          secretRef(this.opts.namespace, secretName),
        );
        if (!sameSecret(wanted, stored)) {
          const obj = wanted as KubeSecret & KubeObject;
          if (stored === undefined) await this.opts.api.create(secretRef(this.opts.namespace), obj);
          else
            await this.opts.api.replace(secretRef(this.opts.namespace, secretName), {
              ...obj,
              metadata: { ...obj.metadata, resourceVersion: stored.metadata.resourceVersion },
            });
          result.writes++;
          this.opts.metrics?.writes.inc({
            kind: 'secret',
            action: stored ? 'replace' : 'create',
            result: 'ok',
          });
          this.opts.log.info(
            { prepull: key, secret: `${this.opts.namespace}/${secretName}` },
            'pull secrets mirrored',
          );
        }
      }
      this.states.set(key, {
        token,
        at: now,
        ok: true,
        credentials: merged.credentials,
        ...(secretName ? { secretName } : {}),
      });
      return secretName;
    } catch (err) {
      result.errors++;
      this.opts.metrics?.writes.inc({ kind: 'secret', action: 'mirror', result: 'error' });
      this.opts.log.warn(
        { err: describeError(err), prepull: key },
        'mirroring pull secrets failed; retrying',
      );
      // Keep what was mirrored before: the agents can still use it.
      this.states.set(key, {
        token: state?.token ?? '',
        at: now,
        ok: false,
        credentials: state?.credentials ?? new Map(),
        ...(state?.secretName ? { secretName: state.secretName } : {}),
      });
      return state?.secretName;
    }
  }

  /** Deletes mirrored Secrets no PrePull names any more: at each resync, and when the set changed. */
  async collect(prePulls: readonly PrePull[], now: number, result: Tally): Promise<void> {
    const wanted = new Set<string>();
    for (const p of prePulls) {
      if (Array.isArray(p.spec?.imagePullSecrets) && p.spec.imagePullSecrets.length > 0)
        wanted.add(mirroredSecretName(p));
    }
    const names = [...wanted].sort().join(',');
    if (names === this.lastGc.names && now - this.lastGc.at < this.opts.resyncMs) return;
    try {
      const { items } = await this.opts.api.list<KubeSecret & KubeObject>(secretRef(this.opts.namespace), {
        labelSelector: MIRRORED_SELECTOR,
      });
      for (const s of items) {
        if (wanted.has(s.metadata.name)) continue;
        await this.opts.api.delete(secretRef(this.opts.namespace, s.metadata.name));
        result.writes++;
        this.opts.metrics?.writes.inc({ kind: 'secret', action: 'delete', result: 'ok' });
        this.opts.log.info(
          { secret: `${this.opts.namespace}/${s.metadata.name}` },
          'mirrored pull secret deleted: no PrePull names it',
        );
      }
      this.lastGc = { at: now, names };
    } catch (err) {
      result.errors++;
      this.opts.log.warn({ err: describeError(err) }, 'collecting mirrored pull secrets failed; retrying');
    }
  }
}
