// The CustomResourceDefinitions of an install: src/prepull/crd.ts builds them (and writes them to
// deploy/crds, which the chart's crds/ copies); taken from there, no file is read at run time.
import { parse } from 'yaml';
import { crdFiles } from '../prepull/index.js';
import type { KubeObject } from './meta.js';

/** The CRDs in deploy/crds's order (file name), each as its file parses. */
export function installCrds(): KubeObject[] {
  const files = crdFiles();
  return Object.keys(files)
    .sort()
    .map((name) => parse(files[name] ?? '') as KubeObject);
}
