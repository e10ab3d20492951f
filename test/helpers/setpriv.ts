// Running a command with the identity a rendered container would have on a node: its uid and
// gid, the pod's supplementalGroups and nothing else, no capability and no privilege escalation.
// setpriv (util-linux) does the switch; the test process must be root.
import assert from 'node:assert/strict';
import type { Loose } from './install.js';
import type { CommandWrapper } from './netns.js';

export interface ProcessIdentity {
  uid: number;
  gid: number;
  /** Supplementary groups; none when empty. */
  groups: number[];
}

/**
 * The identity a container of a rendered pod spec runs with. Asserts it is one setpriv can give
 * faithfully: every capability dropped and none added, no privilege escalation, explicit ids.
 */
export function containerIdentity(pod: Loose, container: Loose): ProcessIdentity {
  const sc = container.securityContext;
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, `${container.name}: every capability dropped`);
  assert.equal(sc.allowPrivilegeEscalation, false, `${container.name}: no privilege escalation`);
  assert.equal(typeof sc.runAsUser, 'number', `${container.name}: runAsUser`);
  assert.equal(typeof sc.runAsGroup, 'number', `${container.name}: runAsGroup`);
  return {
    uid: sc.runAsUser,
    gid: sc.runAsGroup,
    groups: [...((pod.securityContext?.supplementalGroups as number[] | undefined) ?? [])],
  };
}

/**
 * Runs commands as `id` with no capability (even as uid 0: an empty bounding set leaves none
 * after exec) and no_new_privs, as a container with `capabilities: {drop: [ALL]}` and
 * `allowPrivilegeEscalation: false` runs.
 */
export function asIdentity(id: ProcessIdentity): CommandWrapper {
  return (cmd, args) => ({
    cmd: 'setpriv',
    args: [
      `--reuid=${id.uid}`,
      `--regid=${id.gid}`,
      id.groups.length > 0 ? `--groups=${id.groups.join(',')}` : '--clear-groups',
      '--inh-caps=-all',
      '--ambient-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      cmd,
      ...args,
    ],
  });
}
