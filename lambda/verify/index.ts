// Placeholder until the verification function lands; the constructs bundle this path.
export async function handler(): Promise<void> {
  throw new Error('the verification function is not built yet');
}
