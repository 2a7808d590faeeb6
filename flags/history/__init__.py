"""History: how every change is recorded (who, when, why) and read back as timelines and feeds."""
