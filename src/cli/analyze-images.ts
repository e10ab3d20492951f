import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { renderImagesHtml } from '../analyze/index.js';
import { fetchImages } from '../analyze/index.js';
import { analyzeImageSet, formatBytes, type ImageSetReport } from '../analyze/index.js';
import type { Credentials } from '../registry-client/index.js';
import { cutAtWord, textTable } from '../analyze/pull-report.js';
import { collect, inputErrorsAsUsage } from './analyze-common.js';
import { parsePlainHttp } from './convert.js';
import { UsageError } from './usage-error.js';

interface ImagesFlags {
  output: string;
  out: string;
  platform?: string;
  plainHttp?: string[];
  creds?: string[];
  skipUncompressed?: boolean;
}

function parseCreds(values: string[]): Record<string, Credentials> {
  const out: Record<string, Credentials> = {};
  for (const v of values) {
    const m = /^([^=]+)=([^:]+):(.*)$/.exec(v);
    if (!m?.[1] || !m[2])
      throw new UsageError(`--creds "${v.split(':')[0]}:...": expected REGISTRY=USER:PASSWORD`);
    out[m[1]] = { username: m[2], password: m[3] ?? '' };
  }
  return out;
}

/** Room for a layer's `created_by` in the text table: enough to recognise the instruction. */
const CREATED_BY_MAX_CHARS = 72;

export function formatImagesText(r: ImageSetReport): string {
  let s = '';
  for (const img of r.images) {
    s += `${img.ref}  ${img.platform}  ${img.digest}\n`;
    s += `  ${formatBytes(img.compressedBytes)} compressed, ${img.uncompressedBytes === null ? 'unknown' : formatBytes(img.uncompressedBytes)} uncompressed, ${img.layers.length} layers; lazy pull: ${img.lazyPull.recommended ? 'yes' : 'no'} (${img.lazyPull.reason})\n`;
    const rows = img.layers.map((l, i) => [
      String(i + 1),
      l.digest.slice(7, 19),
      formatBytes(l.size),
      l.sharedWith > 0 ? `shared with ${l.sharedWith}` : 'unique',
      cutAtWord(l.createdBy ?? '', CREATED_BY_MAX_CHARS),
    ]);
    s += textTable(
      ['#', 'layer', 'size', 'shared', 'made by'],
      rows,
      ['right', 'left', 'right', 'left', 'left'],
      '  ',
    );
  }
  s += `\nnaive sum ${formatBytes(r.naiveBytes)}; a node holding every image downloads ${formatBytes(r.uniqueBytes)} (${r.sharedLayers.length} shared layers)\n`;
  r.groups.forEach((g, i) => {
    s += `base group ${i + 1}: ${g.images.join(', ')} (${g.baseLayers.length} common layers, ${formatBytes(g.baseBytes)})\n`;
  });
  for (const a of r.advice) s += `\n${a.topic}: ${a.message}\n  fix: ${a.fix}\n`;
  return s;
}

export function registerAnalyzeImages(analyze: Command): void {
  analyze
    .command('images')
    .description('sizes, layers, shared bytes and base groups of a set of images, read from their registries')
    .argument('<ref...>', 'image references, e.g. ghcr.io/org/app:v2 127.0.0.1:5000/base@sha256:...')
    .option('--output <format>', 'text, json or html', 'text')
    .option('--out <file>', 'where --output html writes the report', 'hoist-images.html')
    .option('--platform <os/arch>', 'platform to read from multi-platform images (default linux/<this arch>)')
    .option(
      '--plain-http <registry>',
      'reach this registry over http (loopback ones always are); repeatable',
      parsePlainHttp,
    )
    .option('--creds <registry=user:password>', 'credentials for a registry; repeatable', collect)
    .option('--skip-uncompressed', 'do not read layer trailers for uncompressed sizes')
    .action(async (refs: string[], opts: ImagesFlags) => {
      if (!['text', 'json', 'html'].includes(opts.output)) {
        throw new UsageError(`--output "${opts.output}": use text, json or html`);
      }
      if (opts.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(opts.platform)) {
        throw new UsageError(`--platform "${opts.platform}": expected OS/ARCH[/VARIANT], e.g. linux/amd64`);
      }
      const images = await inputErrorsAsUsage(() =>
        fetchImages(refs, {
          ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
          plainHttp: opts.plainHttp ?? [],
          credentials: parseCreds(opts.creds ?? []),
          skipUncompressed: opts.skipUncompressed === true,
        }),
      );
      const report = analyzeImageSet(images);
      if (opts.output === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else if (opts.output === 'html') {
        await writeFile(opts.out, renderImagesHtml(report, new Date().toISOString()));
        process.stdout.write(`wrote ${opts.out}\n`);
      } else process.stdout.write(formatImagesText(report));
    });
}
