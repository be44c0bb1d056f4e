// Every action asks first, then says what happened in the page's live region.

import { message, replace } from "./dom.js";

/** Confirm `question`, run `action`, and report `describe(result)` or the error. Returns the result or null. */
export async function act(question, action, describe) {
  if (!window.confirm(question)) return null;
  const region = document.getElementById("notice");
  try {
    const result = await action();
    replace(region, message(describe(result), "ok"));
    return result;
  } catch (err) {
    replace(region, message(err.message, "error"));
    return null;
  }
}
