// Bech32 lives in lib/core: the constructs check age recipients with it too.
export { bech32Decode, bech32Encode } from '../../../lib/core/bech32';
