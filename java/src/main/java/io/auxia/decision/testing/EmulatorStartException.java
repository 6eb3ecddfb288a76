package io.auxia.decision.testing;

/**
 * The emulator could not be started: {@code auxia-decision} is missing, or the server exited, or
 * it wrote no ready file in time. The message is one line; {@link #reason()} is the server's own
 * line when it gave one. No process is left running.
 */
public final class EmulatorStartException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String reason;

  EmulatorStartException(String message, String reason, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  /** {@return the server's one-line reason ({@code error: ...}), or the message when none} */
  public String reason() {
    return reason;
  }
}
