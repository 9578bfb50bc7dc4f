"""Synthetic but realistic days of interval readings for the payload and airtime benchmarks.

Deterministic (seeded); `noise` scales every sensor's noise (1.0: the figures below; the airtime bench
also runs 2.0, twice the sensor noise, over 20 seeds). Waste: a 1000 mm bin filling about 30 points a day in bag-sized steps, emptied at
07:00 on day 2, an ultrasonic distance already median-filtered (+-3 mm), outdoor temperature with a daily
cycle, a LiPo battery drifting down. Environment: 10-minute means of a street-side BME280, SCD4x and SPS30.
"""

import math
import random

DEPTH_MM = 1000
OFFSET_MM = 150


def waste_day(days=1, interval_min=15, seed=1, noise=1.0):
    rnd = random.Random(seed)
    rows = []
    fill = 0.35
    batt = 3950.0
    for i in range(days * 24 * 60 // interval_min):
        t_h = i * interval_min / 60
        flags = 0
        if rnd.random() < 0.08 and 7 <= t_h % 24 <= 22:
            fill = min(1.0, fill + rnd.uniform(0.01, 0.04))
        if abs(t_h - 31.0) < 1e-9:
            fill, flags = 0.02, 0b011  # tilt + pickup
        dist = round(OFFSET_MM + DEPTH_MM * (1 - fill) + rnd.gauss(0, 1.5 * noise))
        fill_bp = max(0, min(10000, (DEPTH_MM - (dist - OFFSET_MM)) * 10000 // DEPTH_MM))
        temp = 800 + 600 * math.sin((t_h - 9) / 24 * 2 * math.pi) + rnd.gauss(0, 15 * noise)
        batt -= 0.2
        rows.append([dist, fill_bp, round(temp), round(batt + rnd.gauss(0, 3 * noise)), flags])
    return rows


def env_day(days=1, interval_min=10, seed=2, noise=1.0):
    rnd = random.Random(seed)
    rows = []
    press = 101300.0
    batt = 3900.0
    co2 = 430.0
    pm = 8.0
    for i in range(days * 24 * 60 // interval_min):
        t_h = i * interval_min / 60
        temp = 1000 + 500 * math.sin((t_h - 9) / 24 * 2 * math.pi) + rnd.gauss(0, 8 * noise)
        rh = 750 - 150 * math.sin((t_h - 9) / 24 * 2 * math.pi) + rnd.gauss(0, 8 * noise)
        press += rnd.gauss(0, 8 * noise)
        traffic = 1.0 + 0.8 * math.exp(-((t_h % 24 - 8) ** 2) / 2) + 0.6 * math.exp(-((t_h % 24 - 17) ** 2) / 2)
        co2 += (420 + 40 * traffic - co2) * 0.3 + rnd.gauss(0, 3 * noise)
        pm += (6 * traffic - pm) * 0.3 + rnd.gauss(0, 0.4 * noise)
        pm25 = max(0.0, pm)
        pm10 = pm25 * 1.6 + abs(rnd.gauss(0, 0.5 * noise))
        batt -= 0.15
        rows.append([round(temp), round(rh), round(press), round(co2), round(pm25), round(pm10),
                     round(batt + rnd.gauss(0, 3 * noise))])
    return rows
