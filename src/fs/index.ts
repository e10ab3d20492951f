// Durable file-system steps that more than one capability needs (the mirror's stores, the node's
// configuration writes).
export { syncDir } from './sync-dir.js';
