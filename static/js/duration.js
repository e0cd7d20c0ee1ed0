// Durations as people read them: "45 s", "about 4 min 10 s", "1 h 5 min" (the run form's
// estimate and the run page's ETA). Above a minute the seconds are rounded to tens.
window.attuneDuration = function (seconds) {
  "use strict";
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  if (s >= 3600) {
    const minutes = Math.round(s / 60);
    const rest = minutes % 60;
    return Math.floor(minutes / 60) + " h" + (rest ? " " + rest + " min" : "");
  }
  s = Math.round(s / 10) * 10;
  const rest = s % 60;
  return Math.floor(s / 60) + " min" + (rest ? " " + rest + " s" : "");
};
