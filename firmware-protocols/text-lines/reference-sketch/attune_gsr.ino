// attune_gsr.ino: attune's reference text-line GSR sketch (SPEC.md section 9).
//
// NOT VERIFIED ON HARDWARE: written from the Seeed Grove-GSR wiki sketch (VENDOR) and the
// Arduino core's documented behaviour; never compiled for or run on a board by us. Check it with
// HARDWARE_CHECK.md before trusting it.
//
// What it prints, at 115200 baud (8N1):
//   setup():  "# attune_gsr v1 20 Hz*HH\r\n"            boot banner (a comment line)
//   loop():   "<millis>,<raw>*HH\r\n" every 50 ms         20 lines/s
// <millis> is millis() when the reading started (unsigned long, wraps after 2^32 ms), <raw> the
// mean of 10 analogRead(A0) (0..1023 on a 10-bit AVR), *HH the XOR of every byte before '*' as
// two upper-case hex digits (attune's own checksum extension, not Seeed's).
//
// attune settings for this sketch (the serial port at 115200 baud):
//   rate_hz = 20, time_column = 0, value_column = 1, value = "adc", checksum = "auto"
//   cal = <the no-contact reading you trimmed to, 512 per the wiki>, full_scale = 1024
//
// 9600 baud also works at 20 Hz (a line is at most 20 bytes: 400 bytes/s of 960); then set the
// same baud on the attune side. The Seeed wiki sketch itself uses 9600.

const uint8_t GSR_PIN = A0;
const unsigned long PERIOD_MS = 50;  // 20 Hz: must match rate_hz
const uint8_t N_AVG = 10;            // as the Seeed sketch (it waits 5 ms between reads)

unsigned long next_ms;

// Prints body, then "*HH\r\n" (println() ends lines with "\r\n" in the Arduino core).
static void printChecked(const char *body) {
  uint8_t sum = 0;
  for (const char *p = body; *p != '\0'; ++p) {
    sum ^= (uint8_t)*p;
  }
  Serial.print(body);
  Serial.print('*');
  if (sum < 0x10) {
    Serial.print('0');
  }
  Serial.println(sum, HEX);  // HEX digits are upper case
}

void setup() {
  Serial.begin(115200);
  printChecked("# attune_gsr v1 20 Hz");
  next_ms = millis();
}

void loop() {
  // Wait for the next period; the subtraction is wrap-safe across the 2^32 ms rollover.
  while ((long)(millis() - next_ms) < 0) {
  }
  unsigned long t = millis();
  // If we fell more than a period behind, skip ahead: the host sees the jump in the time
  // column and counts the lost lines, rather than receiving a burst of late samples.
  if (t - next_ms > PERIOD_MS) {
    next_ms = t;
  }
  next_ms += PERIOD_MS;

  long sum = 0;
  for (uint8_t i = 0; i < N_AVG; i++) {
    sum += analogRead(GSR_PIN);
    delayMicroseconds(500);  // 10 x (~0.11 ms conversion + 0.5 ms) ~ 6 ms of the 50 ms period
  }
  int raw = (int)(sum / N_AVG);

  char line[24];  // "4294967295,1023" is 15 characters
  snprintf(line, sizeof line, "%lu,%d", t, raw);
  printChecked(line);
}
