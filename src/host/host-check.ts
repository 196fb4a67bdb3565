/** One finding of `tempkube doctor`: what is wrong, whether it blocks, and the command that fixes it. */
export interface HostCheck {
  name: string;
  ok: boolean;
  blocking: boolean;
  detail: string;
  fix?: string;
}
