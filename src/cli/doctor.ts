import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { hasFindingAtOrAbove, type Finding } from '../analyze/index.js';
import {
  checkContainerdConfig,
  checkKubeletConfig,
  DoctorError,
  parseContainerdConfig,
  parseKubeletConfig,
  type ContainerdCheckOptions,
  type ContainerdFinding,
} from '../doctor/index.js';
import { parseContainerdVersion } from '../node/index.js';
import { formatFindings, parseFailOn, summary } from './analyze-common.js';
import { UsageError } from './usage-error.js';

interface DoctorFlags {
  output: string;
  failOn: string;
  containerdVersion?: string;
}

async function readConfig(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(code)}`);
  }
}

function report(file: string, findings: ContainerdFinding[], opts: DoctorFlags): void {
  const failOn = parseFailOn(opts.failOn);
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify({ path: file, findings }, null, 2)}\n`);
  } else {
    process.stdout.write(formatFindings(file, findings as Finding[]));
    for (const f of findings) {
      for (const extra of f.files ?? []) process.stdout.write(`\n# ${extra.path}\n${extra.content}`);
    }
    process.stdout.write(summary(findings));
  }
  if (failOn && hasFindingAtOrAbove(findings, failOn)) process.exitCode = 1;
}

function command(
  doctor: Command,
  name: string,
  description: string,
  check: (text: string, file: string, opts: DoctorFlags) => ContainerdFinding[],
  extra: (cmd: Command) => Command = (cmd) => cmd,
): void {
  const cmd = doctor
    .command(name)
    .description(description)
    .argument('<file>', 'the configuration file')
    .option('--output <format>', 'text or json', 'text')
    .option(
      '--fail-on <severity>',
      'exit 1 when a finding at or above this exists: error, warning, info, none',
      'error',
    );
  extra(cmd).action(async (file: string, opts: DoctorFlags) => {
    if (!['text', 'json'].includes(opts.output))
      throw new UsageError(`--output "${opts.output}": use text or json`);
    parseFailOn(opts.failOn);
    const text = await readConfig(file);
    let findings: ContainerdFinding[];
    try {
      findings = check(text, file, opts);
    } catch (err) {
      if (err instanceof DoctorError) throw new UsageError(err.message, { cause: err });
      throw err;
    }
    report(file, findings, opts);
  });
}

function containerdOptions(flag: string | undefined): ContainerdCheckOptions {
  if (flag === undefined) return {};
  const v = parseContainerdVersion(flag, 'flag');
  if (!v) throw new UsageError(`--containerd-version "${flag}": use MAJOR.MINOR, e.g. 1.7 or 2.1`);
  return { containerdMajor: v.major };
}

export function registerDoctor(program: Command): void {
  const doctor = program
    .command('doctor')
    .description('check node configuration for what makes pulls slow or fail');
  command(
    doctor,
    'kubelet-config',
    'check a KubeletConfiguration: parallel pulls, image GC thresholds and ages, pull QPS',
    (text, file) => checkKubeletConfig(parseKubeletConfig(text, file)),
  );
  command(
    doctor,
    'containerd-config',
    "check containerd's config.toml: registry mirrors and config_path, stargz snapshotter, concurrent downloads",
    (text, file, opts) =>
      checkContainerdConfig(parseContainerdConfig(text, file), containerdOptions(opts.containerdVersion)),
    (cmd) =>
      cmd.option(
        '--containerd-version <version>',
        'the containerd that reads the file (e.g. 1.7, 2.1); default: 2.x for a version 3 file, else either',
      ),
  );
}
