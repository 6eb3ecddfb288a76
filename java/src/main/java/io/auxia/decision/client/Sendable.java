package io.auxia.decision.client;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.regex.Pattern;

/**
 * The checks a key and a base URL pass before a client is made with them: what a header can carry,
 * and a URL with nothing a key could leak into. Their errors never show a key.
 */
public final class Sendable {
  // Visible ASCII, with spaces inside but not at either end (a header's value is trimmed).
  private static final Pattern SENDABLE_KEY =
      Pattern.compile("[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?");

  private Sendable() {}

  /**
   * Refuses a key that a header cannot carry, without showing it.
   *
   * @param key the key
   * @param what what the key is, as the error names it ({@code "the API key"})
   * @throws IllegalArgumentException when a header cannot carry it
   */
  public static void checkKey(String key, String what) {
    if (!SENDABLE_KEY.matcher(key).matches()) {
      throw new IllegalArgumentException(
          what + " holds a character a header cannot carry (a space at either end, a line"
              + " break or another control character, or a non-ASCII one); the key is not shown:"
              + " check where it is read from");
    }
  }

  /**
   * Refuses a base URL that is no http(s) URL, or carries credentials, a query or a fragment.
   *
   * @param url the base URL
   * @throws IllegalArgumentException when it is refused; a URL with an {@code @} is not shown
   */
  public static void checkBaseUrl(String url) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      uri = null;
    }
    if (uri != null && uri.getRawUserInfo() != null) {
      throw new IllegalArgumentException(
          "the base URL carries credentials, and a key goes in its header (the URL is not shown)");
    }
    // Shown without its query and fragment, where a key may be.
    String shown = url.split("[?#]", 2)[0];
    if (uri == null
        || uri.getHost() == null
        || !("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))) {
      throw new IllegalArgumentException(
          shown.contains("@")
              ? "the base URL is not an http:// or https:// URL (it is not shown: it has an @)"
              : "the base URL is not an http:// or https:// URL: " + shown);
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw new IllegalArgumentException(
          "the base URL must not carry a query or a fragment (not shown: a key may be in it): "
              + shown);
    }
  }
}
