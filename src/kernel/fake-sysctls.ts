/** The sysctl keys and defaults the recording kernel gives every namespace and interface (Linux 6.18). */

/** Global sysctls every fresh namespace has, with the kernel's defaults. */
export const globalSysctls: Record<string, string> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv4.ip_local_port_range': '32768\t60999',
  'net.ipv4.ip_unprivileged_port_start': '1024',
  'net.ipv4.ping_group_range': '1\t0',
  'net.core.somaxconn': '4096',
  'net.ipv4.tcp_syncookies': '1',
};
/** Per-interface conf.{all,default,IFNAME}.* keys and their defaults, as listed by Linux 6.18. */
export const confDefaults: Record<4 | 6, Record<string, string>> = {
  4: keyValues(
    'accept_local=0 accept_redirects=1 accept_source_route=1 arp_accept=0 arp_announce=0 ' +
    'arp_evict_nocarrier=1 arp_filter=0 arp_ignore=0 arp_notify=0 bc_forwarding=0 bootp_relay=0 ' +
    'disable_policy=0 disable_xfrm=0 drop_gratuitous_arp=0 drop_unicast_in_l2_multicast=0 ' +
    'force_igmp_version=0 forwarding=0 igmpv2_unsolicited_report_interval=10000 ' +
    'igmpv3_unsolicited_report_interval=1000 ignore_routes_with_linkdown=0 log_martians=0 mc_forwarding=0 ' +
    'medium_id=0 promote_secondaries=0 proxy_arp=0 proxy_arp_pvlan=0 route_localnet=0 rp_filter=0 ' +
    'secure_redirects=1 send_redirects=1 shared_media=1 src_valid_mark=0 tag=0',
  ),
  6: keyValues(
    'accept_dad=1 accept_ra=1 accept_ra_defrtr=1 accept_ra_from_local=0 accept_ra_min_hop_limit=1 ' +
    'accept_ra_min_lft=0 accept_ra_mtu=1 accept_ra_pinfo=1 accept_ra_rt_info_max_plen=0 ' +
    'accept_ra_rt_info_min_plen=0 accept_ra_rtr_pref=1 accept_redirects=1 accept_source_route=0 ' +
    'accept_untracked_na=0 addr_gen_mode=0 autoconf=1 dad_transmits=1 disable_ipv6=0 disable_policy=0 ' +
    'drop_unicast_in_l2_multicast=0 drop_unsolicited_na=0 enhanced_dad=1 force_forwarding=0 ' +
    'force_mld_version=0 force_tllao=0 forwarding=0 hop_limit=64 ignore_routes_with_linkdown=0 ' +
    'ioam6_enabled=0 ioam6_id=65535 ioam6_id_wide=4294967295 keep_addr_on_down=0 max_addresses=16 ' +
    'max_desync_factor=600 mc_forwarding=0 mldv1_unsolicited_report_interval=10000 ' +
    'mldv2_unsolicited_report_interval=1000 mtu=1280 ndisc_evict_nocarrier=1 ndisc_notify=0 ' +
    'ndisc_tclass=0 optimistic_dad=0 proxy_ndp=0 ra_defrtr_metric=1024 ra_honor_pio_life=0 ' +
    'ra_honor_pio_pflag=0 regen_max_retry=3 regen_min_advance=2 router_probe_interval=60 ' +
    'router_solicitation_delay=1 router_solicitation_interval=4 router_solicitation_max_interval=3600 ' +
    'router_solicitations=-1 rpl_seg_enabled=0 seg6_enabled=0 seg6_require_hmac=0 suppress_frag_ndisc=1 ' +
    'temp_prefered_lft=86400 temp_valid_lft=604800 use_oif_addrs_only=0 use_optimistic=0 use_tempaddr=0',
  ),
};

function keyValues(text: string): Record<string, string> {
  return Object.fromEntries(text.split(' ').map((kv) => kv.split('=') as [string, string]));
}
