import { describe, expect, it } from 'vitest';
import { isPublicAddress } from '../src/policy/is-public-address.js';

describe('isPublicAddress', () => {
  it.each([
    // IPv4: public
    ['8.8.8.8', true],
    ['93.184.215.14', true],
    ['1.1.1.1', true],
    ['172.15.255.255', true],
    ['172.32.0.1', true],
    ['100.63.255.255', true],
    ['100.128.0.0', true],
    ['192.169.0.1', true],
    ['223.255.255.255', true],
    // IPv4: not public
    ['127.0.0.1', false],
    ['127.255.255.254', false],
    ['0.0.0.0', false],
    ['10.0.0.1', false],
    ['10.255.255.255', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['100.127.255.255', false],
    ['192.0.0.8', false],
    ['192.0.2.1', false],
    ['198.18.0.1', false],
    ['198.51.100.7', false],
    ['203.0.113.9', false],
    ['224.0.0.1', false],
    ['239.255.255.250', false],
    ['240.0.0.1', false],
    ['255.255.255.255', false],
    // IPv6: public
    ['2606:4700:4700::1111', true],
    ['2001:4860:4860::8888', true],
    ['[2a00:1450:4001:82b::200e]', true],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::808:808', true],
    // IPv6: not public
    ['::', false],
    ['::1', false],
    ['[::1]', false],
    ['0:0:0:0:0:0:0:1', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['febf:ffff::1', false],
    ['fc00::1', false],
    ['fd00:ec2::254', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['100::1', false],
    ['::127.0.0.1', false],
    // IPv6 forms of private IPv4 addresses
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['[::ffff:169.254.169.254]', false],
    ['::ffff:10.1.2.3', false],
    ['0:0:0:0:0:ffff:c0a8:0101', false],
    ['64:ff9b::a00:1', false],
    ['64:ff9b::127.0.0.1', false],
    ['2002:a9fe:a9fe::1', false],
    ['2002:7f00:1::', false],
    ['2002:808:808::1', true],
    // not an IP address
    ['localhost', false],
    ['', false],
    ['127.1', false],
    ['0x7f000001', false],
    ['2130706433', false],
    ['1.2.3.256', false],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicAddress(ip)).toBe(expected);
  });
});
